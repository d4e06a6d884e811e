# Files a program names to xdpload in a directory every user can write to
# (/tmp) are opened as the kernel's fs.protected_symlinks and
# fs.protected_regular would (many hosts, this one included, turn those
# off): a root program under the preload does not follow another user's
# link planted at its XDPLOAD_PCAP or XDPLOAD_RULES path, nor overwrite
# another user's file there, and says why in one line; the wrapper does not
# read a planted profile. Its own links and files, and links of the
# directory's owner, still work.
. "$(dirname "$0")/../lib/common.sh"
need_root
netns_up
tmp=$(mktemp -d)
shared=$(mktemp -d /tmp/xl-shared.XXXXXX)  # a sticky directory every user can write to
chmod 1777 "$shared"
trap 'rm -rf "$tmp" "$shared"; netns_down' EXIT
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
echo precious >"$tmp/target"
chmod 755 "$tmp"
before=$(sha256sum <"$tmp/target")
send_one="import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('$IP_B', 9)); print('sent')"

# XDPLOAD_PCAP: nobody's link to a root file.
as_nobody ln -s "$tmp/target" "$shared/capture.pcap"
PRELOAD_A env XDPLOAD_PCAP="$shared/capture.pcap" python3 -c "$send_one" >"$tmp/out" 2>"$tmp/err"
cat "$tmp/err"
check "pcap: a planted link is not followed, said in one line" \
  one_line_with "$tmp/err" "XDPLOAD_PCAP=$shared/capture.pcap is a symbolic link of uid 65534"
check "pcap: the program ran (on the kernel path)" grep -qx sent "$tmp/out"
check "pcap: the link's target is untouched" [ "$(sha256sum <"$tmp/target")" = "$before" ]
rm -f "$shared/capture.pcap"

# XDPLOAD_PCAP: nobody's regular file is not overwritten.
as_nobody bash -c "echo theirs >$shared/capture.pcap"
PRELOAD_A env XDPLOAD_PCAP="$shared/capture.pcap" python3 -c "$send_one" >"$tmp/out" 2>"$tmp/err"
cat "$tmp/err"
check "pcap: another user's file is not overwritten, said in one line" \
  bash -c "one_line_with $tmp/err 'belongs to uid 65534' && [ \"\$(cat $shared/capture.pcap)\" = theirs ]"
rm -f "$shared/capture.pcap"

# Root's own link in the same place is followed: a capture is written.
ln -s "$tmp/mine.pcap" "$shared/capture.pcap"
PRELOAD_A env XDPLOAD_PCAP="$shared/capture.pcap" python3 -c "$send_one" >"$tmp/out" 2>"$tmp/err"
cat "$tmp/err"
check "pcap: the caller's own link is followed, the capture written" \
  bash -c "[ ! -s $tmp/err ] && [ \$(stat -c %s $tmp/mine.pcap) -gt 24 ]"
rm -f "$shared/capture.pcap"

# XDPLOAD_RULES: nobody's link to a rules file of root's.
printf 'tcp_server *:* accelerate\n' >"$tmp/rules"
as_nobody ln -s "$tmp/rules" "$shared/rules"
PRELOAD_A env XDPLOAD_RULES="$shared/rules" python3 -c "$send_one" >"$tmp/out" 2>"$tmp/err"
cat "$tmp/err"
check "rules: a planted link is not followed, said in one line" \
  one_line_with "$tmp/err" "XDPLOAD_RULES=$shared/rules is a symbolic link of uid 65534"
rm -f "$shared/rules"

# The wrapper's --profile PATH.
printf 'XDPLOAD_SPIN_USEC=5\n' >"$tmp/p.conf"
as_nobody ln -s "$tmp/p.conf" "$shared/p.conf"
"$TOP/tools/xdpload" --dry-run --profile "$shared/p.conf" true >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/err"
check "profile: a planted link is refused (exit $rc)" \
  bash -c "[ $rc -ne 0 ] && grep -q 'is a symbolic link of uid 65534' $tmp/err"
ln -sf "$tmp/p.conf" "$shared/mine.conf"
check "profile: the caller's own link is read" \
  bash -c "'$TOP/tools/xdpload' --dry-run --profile '$shared/mine.conf' true | grep -q 'XDPLOAD_SPIN_USEC=5'"
finish
