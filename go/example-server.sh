#!/bin/sh
# example-server.sh builds the Go example Echo server offline (vendor-debian.sh, then go build with the vendored
# Debian sources) and runs it with the arguments given: `npx -y pnpm@12.21.0 example:go-server --port 0`.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
sh "$dir/vendor-debian.sh"
cd "$dir"
GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 go build -o bin/echo-server ./examples/echo-server
exec "$dir/bin/echo-server" "$@"
