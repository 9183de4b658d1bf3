#!/usr/bin/env bash
# bench-cold.sh - cold and warm read of one file through rgtfs, next to
# OpenSSH sftp and sshfs on the same private sshd (loopback).
#
#   tools/bench-cold.sh [SIZE_MIB] [RGTFS_BINARY]
#
# Needs root (FUSE, a bind mount per box), sshfs and openssh-server.
# Every process it starts is stopped by PID on exit. Prints MiB/s lines.
set -euo pipefail
SIZE=${1:-1024}
RGTFS=$(readlink -f "${2:-build/rgtfs}")
W=$(mktemp -d /tmp/rgtfs-bench.XXXXXX)
PIDS=()
cleanup() {
	set +e
	for m in "$W/mnt" "$W/sshfs"; do
		mountpoint -q "$m" && fusermount3 -u -z "$m"
	done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/box/checkpoints" "$W/mnt" "$W/sshfs" /run/sshd /workspace
ssh-keygen -q -t ed25519 -N '' -f "$W/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$W/userkey"
cp "$W/userkey.pub" "$W/authorized_keys"
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/sshd_config" <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey $W/hostkey
AuthorizedKeysFile $W/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
UsePAM no
StrictModes no
PidFile $W/sshd.pid
Subsystem sftp internal-sftp
CONF
head -c $((SIZE << 20)) /dev/urandom > "$W/box/checkpoints/big.bin"
unshare -m --propagation private sh -c \
	"mount --bind $W/box /workspace && exec /usr/sbin/sshd -D -e -f $W/sshd_config" \
	2>"$W/sshd.log" &
PIDS+=($!)
for _ in $(seq 100); do
	(echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
	sleep 0.05
done

# RTT_MS=100: every client goes through tools/delay-proxy.py (netem is
# not available on this kernel), RTT_MS/2 each way.
if [ -n "${RTT_MS:-}" ]; then
	SPORT=$PORT
	PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	/usr/bin/python3 "$(dirname "$0")/delay-proxy.py" "$PORT" "$SPORT" \
		"$(echo "$RTT_MS / 2" | bc -l)" &
	PIDS+=($!)
	for _ in $(seq 100); do
		(echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
		sleep 0.05
	done
	echo "through a delay proxy: ${RTT_MS} ms RTT" >&2
fi

SSHOPT=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o LogLevel=ERROR -i "$W/userkey")
rate() {	# label seconds
	awk -v l="$1" -v t="$2" -v s="$SIZE" \
		'BEGIN { printf "%-34s %7.2f s  %7.1f MiB/s\n", l, t, s / t }' >&2
}
timeit() {	# label command...
	local l=$1; shift
	sync; echo 3 > /proc/sys/vm/drop_caches
	local a b
	a=$(date +%s.%N); "$@"; b=$(date +%s.%N)
	rate "$l" "$(echo "$b - $a" | bc)"
}

timeit "sftp get (OpenSSH)" \
	sftp -q "${SSHOPT[@]}" -P "$PORT" \
	"root@127.0.0.1:/workspace/checkpoints/big.bin" /dev/null

sshfs -p "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
	-o LogLevel=ERROR -o IdentityFile="$W/userkey" \
	root@127.0.0.1:/workspace "$W/sshfs"
timeit "sshfs cold cat" cat "$W/sshfs/checkpoints/big.bin" > /dev/null
fusermount3 -u "$W/sshfs"

cat > "$W/config.ini" <<CONF
[rgtfs]
sessions = ${SESSIONS:-8}
workers = ${WORKERS:-12}
readahead = ${READAHEAD:-32}
[vastai]
api_url = http://127.0.0.1:1
api_key_env = BENCH_KEY
poll_interval = 3600
CONF
# No platform API here: a plain vast.ai stand-in with one instance.
cat > "$W/world.json" <<CONF
{"api_key": "bench", "instances": [{"id": 1, "actual_status": "running",
 "intended_status": "running", "cur_state": "running", "status_msg": "",
 "public_ipaddr": "127.0.0.1",
 "ports": {"22/tcp": [{"HostIp": "0.0.0.0", "HostPort": "$PORT"}]},
 "ssh_host": "127.0.0.1", "ssh_port": $PORT, "is_bid": false}]}
CONF
APORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 "$(dirname "$0")/../tests/integration/fake_vast.py" \
	--port "$APORT" --world "$W/world.json" > "$W/api.log" 2>&1 &
PIDS+=($!)
sed -i "s/127.0.0.1:1/127.0.0.1:$APORT/" "$W/config.ini"
echo "ssh_key = $W/userkey" >> "$W/config.ini"
BENCH_KEY=bench "$RGTFS" -f -o config="$W/config.ini" -o cache="$W/cache" \
	"$W/mnt" 2> "$W/rgtfs.log" &
RPID=$!
PIDS+=($RPID)
F="$W/mnt/vastai/1/checkpoints/big.bin"
for _ in $(seq 200); do [ -e "$F" ] && break; sleep 0.05; done
cpu() { awk '{ print $14 + $15 }' "/proc/$RPID/stat"; }
c0=$(cpu)
[ -n "${PERF:-}" ] && { perf record -F 999 -g -p $RPID -o /tmp/perf.rgtfs 2>/dev/null & PP=$!; sleep 0.3; }
timeit "rgtfs cold cat" cat "$F" > /dev/null
[ -n "${PERF:-}" ] && { kill -INT $PP; wait $PP; }
c1=$(cpu)
echo "rgtfs CPU for the cold read: $(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l | cut -c1-5) s"
grep -E 'VmHWM|RssAnon' "/proc/$RPID/status" | tr -s ' \t' ' '
# SMAPS=1: the largest anonymous mappings, for memory work
[ -n "${SMAPS:-}" ] && awk '/^[0-9a-f]+-[0-9a-f]+ /{name=$6; if(name=="")name="[anon]"} /^Anonymous:/{if($2>1000)print $2" kB "name}' "/proc/$RPID/smaps" | sort -rn | head -12 >&2
[ -n "${SMAPS:-}" ] && echo "threads: $(ls /proc/$RPID/task | wc -l)" >&2
timeit "rgtfs warm cat (LMDB, no page cache)" cat "$F" > /dev/null
a=$(date +%s.%N); cat "$F" > /dev/null; b=$(date +%s.%N)
rate "rgtfs warm cat (page cache)" "$(echo "$b - $a" | bc)"
sha256sum "$F" "$W/box/checkpoints/big.bin" | awk '{print $1}' | uniq | wc -l |
	grep -qx 1 && echo "sha256: identical" || { echo "sha256 MISMATCH"; exit 1; }
