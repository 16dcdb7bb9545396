# Shared by the image builds (probe-image/build.sh, server-image/build.sh): the shared libraries a program
# needs, added to mkimage.py arguments (ARGS) at their real paths, with links for the paths they are found by.
command -v ldd >/dev/null || die "ldd is needed (package libc-bin)"
[ -L /lib ] && [ -L /lib64 ] || die "this script assumes a merged-/usr build host (/lib and /lib64 links into /usr: Debian 12+, Ubuntu 22.04+)"

# Every shared library a program needs, as the paths the loader resolves (e.g. /lib/x86_64-linux-gnu/libc.so.6).
libs_of() { ldd "$1" 2>/dev/null | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}'; }

ARGS=()
declare -A SEEN=()
# A file goes in at its real location; the path it is found by (e.g. /lib64/ld-linux-x86-64.so.2) is a link.
add() {
  local path=$1 real
  real=$(readlink -f "$path")
  [ -z "${SEEN[alias:$path]:-}" ] || return 0
  SEEN[alias:$path]=1
  if [ -z "${SEEN[file:$real]:-}" ]; then
    SEEN[file:$real]=1
    ARGS+=(--file "$real:$real")
  fi
  # Merged /usr: /lib, /lib64, /bin and /sbin are links into /usr below, so only deeper aliases need one.
  local canon=${path/#\/lib64\//\/usr\/lib64\/}
  canon=${canon/#\/lib\//\/usr\/lib\/}
  if [ "$canon" != "$real" ]; then ARGS+=(--symlink "$canon:$real"); fi
}
