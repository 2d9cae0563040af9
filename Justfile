# slipway: git push to deploy. `just` lists the recipes.

bin := justfile_directory() / "bin/slipway"
supervisor := justfile_directory() / "bin/slipway-supervisor"
data := env("SLIPWAY_DATA", "/var/lib/slipway")

# List the recipes
default:
    @just --list

# Build the slipway binary and the instances' supervisor into bin/
build:
    go build -buildvcs=auto -o {{bin}} ./daemon/cmd/slipway
    CGO_ENABLED=0 go build -o {{supervisor}} ./daemon/cmd/slipway-supervisor

# Make this host ready: Incus, storage pool, base image (idempotent)
setup: build
    {{bin}} setup --data {{data}}

# Rebuild the busybox base image and re-import it as slipway/busybox if it changed
image: build
    {{bin}} image --data {{data}}

# Build the Debian image slipway/debian (Python, Node, Ruby, Go): about 2 minutes and 300 MB the first time, cached in /var/cache/slipway/images
image-debian: build
    {{bin}} image build debian --data {{data}}

# Build the Postgres image slipway/postgres that databases run on: about 80 s and 170 MB the first time, cached in /var/cache/slipway/images
image-postgres: build
    {{bin}} image build postgres --data {{data}}

# Set up the host if needed and run the daemon on the defaults (Ctrl-C stops it)
up: setup
    #!/usr/bin/env bash
    set -euo pipefail
    key="${SLIPWAY_ADMIN_KEY:-$HOME/.ssh/id_ed25519.pub}"
    if [ ! -f "$key" ]; then
        echo "No SSH key at $key: making one (ssh-keygen -t ed25519)"
        mkdir -m 700 -p "$(dirname "$key")"
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
    {{just_executable()}} fuzz 5s

# Form a real three-member Incus cluster on this host (incusd per member, each in its own namespaces, a bridge in a namespace of its own), test it, then run slipway on it: needs root, about a minute
cluster-test:
    go test ./daemon/clustertest/ -run TestCluster -v -count=1 -timeout 3m
    go test ./daemon/ -run TestSlipwayOnACluster -v -count=1 -timeout 5m

# Run each fuzz target for a while (just fuzz 10m for longer); an input that fails is written to the package's testdata/fuzz: commit it with the fix
fuzz time="30s":
    #!/usr/bin/env bash
    set -euo pipefail
    # go test fuzzes one target per run.
    for t in channels/proxy:FuzzParseRequest channels/proxy:FuzzParseResponse hooks:FuzzCommandPeeker hooks:FuzzSplitWords channels:FuzzParseManifest; do
        echo "== ${t#*:} (./${t%%:*}, {{time}})"
        go test -run '^$' -fuzz "^${t#*:}\$" -fuzztime {{time}} "./${t%%:*}"
    done

# Measure speed against the targets in the README (not part of CI): prints a table, writes .bench/latest.json
bench *args: setup image-debian
    #!/usr/bin/env bash
    set -euo pipefail
    need=()
    [ -x /usr/sbin/nginx ] || need+=(nginx-light)
    command -v wrk >/dev/null || need+=(wrk)
    [ -x /usr/sbin/sshd ] || need+=(openssh-server)
    command -v git >/dev/null || need+=(git)
    command -v ssh >/dev/null || need+=(openssh-client)
    if [ ${#need[@]} -gt 0 ]; then
        # nginx and openssh-server start their system services when installed;
        # the bench runs its own, so keep those from starting (policy-rc.d).
        made_policy=
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
        fi
        trap '[ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d' EXIT
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
    fi
    go build -o {{justfile_directory()}}/bin/slipway-bench ./daemon/cmd/slipway-bench
    {{justfile_directory()}}/bin/slipway-bench --slipway {{bin}} --examples {{justfile_directory()}}/examples/apps --out {{justfile_directory()}}/.bench {{args}}
