#!/usr/bin/env bash
# coordcpu.sh measures the CPU a scrape run's coordinator spends per page,
# apart from its worker's: the CPU-bound workload (the benchmark site on
# loopback, no added latency, machinefile localhost:64), run by the scrape
# binary BIN, RUNS times. Local workers are the coordinator's children, so
# /proc/PID/stat of the coordinator counts its own CPU only; the workers'
# is read from theirs while they run (every 20 ms, so up to that much of
# a worker's last CPU is missed). Every run is checked for one record per URL.
#
#   cd bench && ./coordcpu.sh BIN [PAGES [RUNS]]
set -euo pipefail
bin=$(realpath "$1")
pages=${2:-20000}
runs=${3:-3}
dir=$(mktemp -d)
site_pid=
cleanup() {
	[ -n "$site_pid" ] && kill "$site_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
go build -o "$dir/benchsite" ./cmd/benchsite
"$dir/benchsite" -pages "$pages" >"$dir/site" &
site_pid=$!
for _ in $(seq 100); do [ -s "$dir/site" ] && break; sleep 0.05; done
base=$(head -1 "$dir/site")
for ((i = 0; i < pages; i++)); do echo "$base/page/$i"; done >"$dir/urls"
echo localhost:64 >"$dir/machinefile"
tck=$(getconf CLK_TCK)

# cpu PID: user+system ticks of one process, empty once it is gone.
cpu() {
	local s
	read -r s <"/proc/$1/stat" 2>/dev/null || return 0
	set -- ${s#*) }
	echo $((${12} + ${13}))
}

for ((r = 1; r <= runs; r++)); do
	rm -f "$dir/out.jsonl"
	start=$(date +%s.%N)
	(cd "$dir" && exec "$bin" run -f machinefile --listen 127.0.0.1:0 -q -o out.jsonl \
		--per-host 128 --ignore-robots urls) &
	pid=$!
	coord=0
	declare -A worker=()
	while kill -0 "$pid" 2>/dev/null; do
		c=$(cpu "$pid") && [ -n "$c" ] && coord=$c
		for f in /proc/"$pid"/task/*/children; do
			kids=()
			# The file ends without a newline: read says so, having read it.
			read -r -a kids <"$f" 2>/dev/null || true
			for k in "${kids[@]}"; do
				c=$(cpu "$k") && [ -n "$c" ] && worker[$k]=$c
			done
		done
		sleep 0.02
	done
	wait "$pid"
	end=$(date +%s.%N)
	w=0
	for k in "${!worker[@]}"; do w=$((w + worker[$k])); done
	unset worker
	records=$(wc -l <"$dir/out.jsonl")
	urls=$(grep -o '"url":"[^"]*"' "$dir/out.jsonl" | sort -u | wc -l)
	if [ "$records" != "$pages" ] || [ "$urls" != "$pages" ]; then
		echo "run $r: $records records of $urls URLs, want $pages of each" >&2
		exit 1
	fi
	awk -v r="$r" -v s="$start" -v e="$end" -v n="$pages" -v c="$coord" -v w="$w" -v t="$tck" 'BEGIN {
		printf "run %d: %d pages in %.2f s, %.0f pages/s; coordinator CPU %.2f s, %.1f us/page; worker CPU %.2f s, %.1f us/page\n",
			r, n, e - s, n / (e - s), c / t, c / t / n * 1e6, w / t, w / t / n * 1e6 }'
done
