#!/bin/sh
# vendor-debian.sh assembles vendor/ from the Go sources Debian packages (golang-github-vmihailenco-msgpack.v5-dev
# puts them in /usr/share/gocode/src), so that `go build` and `go test` run with GOFLAGS=-mod=vendor on a machine
# without a module proxy. Elsewhere none of this is needed: go.mod and go.sum fetch the same versions the usual way.
set -eu
cd "$(dirname "$0")"
src=${GOCODE_SRC:-/usr/share/gocode/src}
msgpack=$src/github.com/vmihailenco/msgpack/v5
tagparser=$src/github.com/vmihailenco/tagparser/v2
if [ ! -f "$msgpack/msgpack.go" ] || [ ! -f "$tagparser/tagparser.go" ]; then
  echo "vendor-debian.sh: $msgpack not found; apt-get install golang-github-vmihailenco-msgpack.v5-dev" >&2
  exit 1
fi
rm -rf vendor.tmp
mkdir -p vendor.tmp/github.com/vmihailenco/msgpack vendor.tmp/github.com/vmihailenco/tagparser
cp -R "$msgpack" vendor.tmp/github.com/vmihailenco/msgpack/v5
cp -R "$tagparser" vendor.tmp/github.com/vmihailenco/tagparser/v2
# Only the packages are vendored: their tests import testify, which this module does not need.
find vendor.tmp -name '*_test.go' -delete
rm -rf vendor.tmp/github.com/vmihailenco/msgpack/v5/extra
cat > vendor.tmp/modules.txt <<'MODULES'
# github.com/vmihailenco/msgpack/v5 v5.3.5
## explicit; go 1.11
github.com/vmihailenco/msgpack/v5
github.com/vmihailenco/msgpack/v5/msgpcode
# github.com/vmihailenco/tagparser/v2 v2.0.0
## explicit; go 1.15
github.com/vmihailenco/tagparser/v2
github.com/vmihailenco/tagparser/v2/internal
github.com/vmihailenco/tagparser/v2/internal/parser
MODULES
rm -rf vendor
mv vendor.tmp vendor
