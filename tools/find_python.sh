#!/usr/bin/env bash
# Print the path of a working Python interpreter, or say why not and exit 1.
#
#   tools/find_python.sh 3.12            # a version
#   tools/find_python.sh python3.12      # a command name, as `make PYTHON=python3.12` passes it
#   tools/find_python.sh /usr/bin/python3
#
# Tries `pythonVERSION` on the PATH first; where that is a pyenv shim for a version pyenv has
# installed but not selected (as on this project's machines), asks pyenv for that version's binary.
set -u
wanted=${1:?usage: tools/find_python.sh VERSION | pythonX.Y | PATH}

# A command or path that runs as it is.
if [[ "$wanted" != [0-9]* ]] && path=$("$wanted" -c 'import sys; print(sys.executable)' 2>/dev/null); then
  echo "$path"
  exit 0
fi
version=${wanted#python}
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+$ ]]; then
  echo "\`$wanted\` does not run, and it names no Python version (pass e.g. PYTHON=python3.12)." >&2
  exit 1
fi
name="python$version"

if command -v "$name" >/dev/null 2>&1; then
  path=$("$name" -c 'import sys; print(sys.executable)' 2>/dev/null) && { echo "$path"; exit 0; }
fi
if command -v pyenv >/dev/null 2>&1; then
  for installed in $(pyenv versions --bare 2>/dev/null | grep -E "^${version//./\\.}(\.[0-9]+)?$" | sort -V -r); do
    candidate="$(pyenv prefix "$installed" 2>/dev/null)/bin/$name"
    if [ -x "$candidate" ] && "$candidate" -c 'import sys' >/dev/null 2>&1; then
      echo "$candidate"
      exit 0
    fi
  done
fi
echo "Python $version was not found: neither \`$name\` on the PATH nor a pyenv version $version.x." >&2
echo "Install Python $version (for example \`pyenv install $version\`) or pass PYTHON=/path/to/$name." >&2
exit 1
