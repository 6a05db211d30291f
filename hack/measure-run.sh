#!/usr/bin/env bash
# Startup, memory and idle CPU of `make run`, with and without the real
# Knative Broker (docs/benchmarks.md). Needs `make controlplane eventing
# build` first. For each mode and RUNS times: start bin/gitpulse-local, wait
# for "ready in", wait 5 s, sum the RSS of it and its children, take the CPU
# time they use over 30 idle seconds (/proc/<pid>/stat, 100 ticks/s), stop it
# with SIGINT as Ctrl-C does, and count processes left behind.
#
#   hack/measure-run.sh            # ports 2xxxx, clear of a running `make run`
set -u
cd "$(git rev-parse --show-toplevel)"
RUNS=${RUNS:-3}
export GITPULSE_APISERVER_PORT=${GITPULSE_APISERVER_PORT:-26443} GITPULSE_ETCD_PORT=${GITPULSE_ETCD_PORT:-22379} \
  GITPULSE_RECORDER_PORT=${GITPULSE_RECORDER_PORT:-28081} GITPULSE_METRICS_PORT=${GITPULSE_METRICS_PORT:-28082} \
  GITPULSE_INTAKE_PORT=${GITPULSE_INTAKE_PORT:-28080} GITPULSE_BROKER_PORT=${GITPULSE_BROKER_PORT:-28083}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
ticks() { local t=0 s; for p in "$@"; do s=$(cut -d' ' -f14,15 /proc/$p/stat 2>/dev/null) && t=$((t + ${s% *} + ${s#* })); done; echo $t; }
for mode in on off; do
  for run in $(seq 1 "$RUNS"); do
    GITPULSE_EVENTING=$mode bin/gitpulse-local > "$log" 2>&1 &
    P=$!
    for _ in $(seq 1 600); do sleep 0.1; grep -q 'ready in\|gitpulse-local:' "$log" && break; done
    ready=$(grep -o 'ready in .*' "$log" || echo "not ready: $(tail -1 "$log")")
    sleep 5
    KIDS=$(ps -o pid= --ppid $P | tr '\n' ' ')
    rss=$(( $(ps -o rss= -p $P $KIDS | paste -sd+ | bc) / 1024 ))
    evrss=$(( $(ps -o rss=,comm= -p $KIDS | awk '$2 ~ /^(channel_|webhook|controller|mtchannel|ingress|filter)/ {s+=$1} END {print s+0}') / 1024 ))
    t0=$(ticks $P $KIDS); sleep 30; t1=$(ticks $P $KIDS)
    cpu=$(echo "scale=2; ($t1 - $t0) / 30" | bc)
    s0=$(date +%s.%N); kill -INT $P; wait $P; s1=$(date +%s.%N)
    left=0; for k in $KIDS; do kill -0 "$k" 2>/dev/null && left=$((left+1)); done
    echo "eventing=$mode run=$run $ready rss_total=${rss}MiB rss_eventing=${evrss}MiB idle_cpu=${cpu}%core stop=$(echo "$s1 - $s0" | bc | cut -c1-4)s left=$left"
  done
done
