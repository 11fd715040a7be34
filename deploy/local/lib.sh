# shellcheck shell=bash
# Shared helpers for the scripts in deploy/local and tests/run. Source it; it does nothing by itself.
#
# Provides:
#   SCHAKEL_ROOT         absolute path of the repository root (found from this file's own location)
#   KAFKA_POM            the pom that lists the Kafka broker jars
#   KAFKA_LIBS           where those jars live (<repo>/.cache/kafka/libs, git-ignored)
#   kafka_jars_stale     true when the jars must be (re)fetched: stamp missing or older than the pom
#   fetch_kafka_jars     fetch them with Maven (atomically replaces KAFKA_LIBS, writes the stamp); prints one line
#                        (prefixed with $SCHAKEL_LOG_PREFIX) when it fetched
#   ensure_kafka_jars    fetch them only when stale
#   now_us, elapsed      wall-clock timing helpers ("7.2 s")

# $(...) keeps `set -e` in force inside it, as the scripts that source this file expect.
shopt -s inherit_errexit

SCHAKEL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KAFKA_POM="$SCHAKEL_ROOT/deploy/local/kafka-jars/pom.xml"
KAFKA_CACHE="$SCHAKEL_ROOT/.cache/kafka"
KAFKA_LIBS="$KAFKA_CACHE/libs"
KAFKA_STAMP="$KAFKA_LIBS/.fetched"

kafka_jars_stale() {
  [[ ! -f "$KAFKA_STAMP" || "$KAFKA_POM" -nt "$KAFKA_STAMP" ]]
}

# Fetches the jars into a fresh folder next to KAFKA_LIBS, then swaps it in, so a failed or changed fetch never
# leaves a mix of old and new versions on the class path. A lock keeps two concurrent runs from racing.
fetch_kafka_jars() {
  if ! command -v mvn >/dev/null; then
    echo "error: mvn not found; run deploy/local/bootstrap first" >&2
    return 1
  fi
  mkdir -p "$KAFKA_CACHE" || return 1
  local lock_fd tmp
  exec {lock_fd}>"$KAFKA_CACHE/.lock"
  flock "$lock_fd" || return 1
  if ! kafka_jars_stale; then # someone else fetched them while we waited
    exec {lock_fd}>&-
    return 0
  fi
  tmp="$(mktemp -d "$KAFKA_CACHE/libs.XXXXXX")"
  chmod 755 "$tmp"
  # Maven's output (even with -q it prints stray colour codes) is shown only when it fails.
  if ! (cd "$(dirname "$KAFKA_POM")" &&
    mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies -DoutputDirectory="$tmp" >"$tmp.log" 2>&1); then
    cat "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    exec {lock_fd}>&-
    echo "error: fetching the Kafka jars with Maven failed (pom: $KAFKA_POM)" >&2
    return 1
  fi
  rm -f "$tmp.log"
  touch "$tmp/.fetched" && rm -rf "$KAFKA_LIBS" && mv "$tmp" "$KAFKA_LIBS" || return 1
  exec {lock_fd}>&-
  local jars=("$KAFKA_LIBS"/*.jar)
  echo "${SCHAKEL_LOG_PREFIX:-bootstrap}: fetched ${#jars[@]} Kafka jars into ${KAFKA_LIBS#"$SCHAKEL_ROOT"/}"
}

ensure_kafka_jars() {
  kafka_jars_stale || return 0
  fetch_kafka_jars
}

# Microseconds since the epoch, from bash's own clock (no external date/bc needed).
now_us() {
  local t="${EPOCHREALTIME/[.,]/}"
  echo "$((10#$t))"
}

# elapsed START_US [END_US] -> "7.2 s"
elapsed() {
  local end="${2:-$(now_us)}"
  local tenths=$(((end - $1 + 50000) / 100000))
  echo "$((tenths / 10)).$((tenths % 10)) s"
}

# ---- free ports (for tests and throw-away brokers) ----------------------------------------------------------

# Ports anything on this machine uses right now, in any TCP state (from /proc, no extra tools needed).
used_ports() {
  local f _ local_addr
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r "$f" ]] || continue
    while read -r _ local_addr _; do
      if [[ "$local_addr" == *:* ]]; then echo "$((16#${local_addr##*:}))"; fi
    done <"$f"
  done
}

# free_ports N: prints N free, distinct ports below the kernel's ephemeral range (so outgoing connections
# won't take them).
free_ports() {
  local count="${1:-2}" low=32768 used picked=() p tries=0
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  ((low > 20000)) || low=60000 # unusual range: fall back to a fixed window above it
  used=" $(used_ports | tr '\n' ' ') "
  while ((${#picked[@]} < count)); do
    ((++tries < 1000)) || { echo "free_ports: found no free ports" >&2; return 1; }
    p=$((low > 60000 ? 60000 + RANDOM % 5000 : 20000 + RANDOM % (low - 20000)))
    [[ "$used" == *" $p "* || " ${picked[*]} " == *" $p "* ]] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue # someone listens after all
    picked+=("$p")
  done
  echo "${picked[@]}"
}

# free_port_block N: prints the first of N consecutive free ports.
free_port_block() {
  local count="$1" tries=0 first p ok
  while ((++tries < 200)); do
    read -r first _ <<<"$(free_ports 1)"
    ok=true
    for ((p = first; p < first + count; p++)); do
      if [[ " $(used_ports | tr '\n' ' ') " == *" $p "* ]]; then ok=false; break; fi
    done
    $ok && { echo "$first"; return 0; }
  done
  echo "free_port_block: found no $count consecutive free ports" >&2
  return 1
}
