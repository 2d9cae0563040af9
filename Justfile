# slipway: git push to deploy. `just` lists the recipes.

bin := justfile_directory() / "bin/slipway"
data := env("SLIPWAY_DATA", "/var/lib/slipway")

# List the recipes
default:
    @just --list

# Build the slipway binary into bin/
build:
    go build -o {{bin}} ./daemon/cmd/slipway

# Make this host ready: Incus, storage pool, base image (idempotent)
setup: build
    {{bin}} setup --data {{data}}

# (Re)import the busybox base image as slipway/busybox
image: build
    {{bin}} image

# Set up the host if needed and run the daemon on the defaults (Ctrl-C stops it)
up: setup
    #!/usr/bin/env bash
    set -euo pipefail
    key="${SLIPWAY_ADMIN_KEY:-$HOME/.ssh/id_ed25519.pub}"
    if [ ! -f "$key" ]; then
        echo "No SSH key at $key: making one (ssh-keygen -t ed25519)"
        mkdir -p "$(dirname "$key")"
        ssh-keygen -q -t ed25519 -N '' -f "${key%.pub}"
    fi
    exec {{bin}} serve --data {{data}} --admin-key "$key"

# Install what the tests need beyond the daemon's own setup (git, ssh, Chromium)
test-deps:
    #!/usr/bin/env bash
    set -euo pipefail
    need=()
    command -v git >/dev/null || need+=(git)
    command -v ssh >/dev/null || need+=(openssh-client)
    command -v chromium >/dev/null || need+=(chromium)
    if [ ${#need[@]} -gt 0 ]; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
    fi

# Run every test: unit tests and integration tests against the real incusd, git, ssh and Chromium
test: test-deps setup
    go vet ./...
    @test -z "$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
    go test -count=1 -timeout 40m ./...

# Measure speed against the targets in the README (not part of CI)
bench: setup
    @echo "bench: not written yet (see the benchmarks issue)"
