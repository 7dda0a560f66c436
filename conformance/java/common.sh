# Sourced by conformance/java/build and conformance/java/run (bash). Not executable.
STRAIT_JAVA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STRAIT_REPO_ROOT="$(cd "$STRAIT_JAVA_DIR/../.." && pwd)"
STRAIT_JAVA_SRC="$STRAIT_JAVA_DIR/src"
STRAIT_JAVA_CLASSES="$STRAIT_JAVA_DIR/classes"
STRAIT_JAVA_STAMP="$STRAIT_JAVA_CLASSES/.build-stamp"

# The Kafka client classpath: $STRAIT_KAFKA_CLASSPATH if set, else the last stdout line of
# `integration/kafka classpath` (which may download Kafka on first use; its logs go to stderr).
strait_kafka_classpath() {
  if [[ -n "${STRAIT_KAFKA_CLASSPATH:-}" ]]; then
    printf '%s\n' "$STRAIT_KAFKA_CLASSPATH"
    return 0
  fi
  local harness="$STRAIT_REPO_ROOT/integration/kafka" out
  if [[ ! -x "$harness" ]]; then
    echo "conformance/java: $harness is missing or not executable (or set STRAIT_KAFKA_CLASSPATH)" >&2
    return 1
  fi
  out="$("$harness" classpath)" || { echo "conformance/java: '$harness classpath' failed" >&2; return 1; }
  out="$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -n 1)"
  if [[ -z "$out" ]]; then
    echo "conformance/java: '$harness classpath' printed nothing" >&2
    return 1
  fi
  printf '%s\n' "$out"
}

# True when the classes are missing or older than any source file.
strait_java_stale() {
  [[ -f "$STRAIT_JAVA_STAMP" ]] || return 0
  [[ -n "$(find "$STRAIT_JAVA_SRC" -name '*.java' -newer "$STRAIT_JAVA_STAMP" -print -quit)" ]]
}
