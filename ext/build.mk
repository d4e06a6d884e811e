# ext/: the extensions API's stub library, which programs link against
# (include/xdpload/extensions.h). libxdpload_ext.so answers "not present"
# unless the preloaded library, which defines the same names, comes first;
# libxdpload_ext.a finds the preloaded library's functions at run time.
EXT_SO := $(BUILD)/libxdpload_ext.so
EXT_A  := $(BUILD)/libxdpload_ext.a
ALL += $(EXT_SO) $(EXT_A)
EXT_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -fPIC -I.

$(EXT_SO): ext/stub_shared.c include/xdpload/extensions.h
	@mkdir -p $(@D)
	$(CC) $(EXT_CFLAGS) -shared -o $@ $<

$(BUILD)/ext/stub_static.o: ext/stub_static.c include/xdpload/extensions.h
	@mkdir -p $(@D)
	$(CC) $(EXT_CFLAGS) -c $< -o $@

$(EXT_A): $(BUILD)/ext/stub_static.o
	rm -f $@ && ar rcs $@ $<
