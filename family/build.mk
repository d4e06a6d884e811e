# family/: memory shared by a process and the children it forks (the arena,
# the robust lock, lwIP's globals). Its objects go into librings.a, the
# lowest library, which everything that runs the stack links.

FAMILY_SRCS := family/arena.cc family/shared_globals.cc
FAMILY_OBJS := $(FAMILY_SRCS:%.cc=$(BUILD)/%.o)
# Places the sections lwIP's globals were renamed into (stack/build.mk) on
# pages of their own, between two symbols; linked into libxdpload.so.
FAMILY_LDSCRIPT := family/family.ld

$(BUILD)/family/%.o: family/%.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(LIB_CXXFLAGS) -MMD -c $< -o $@
