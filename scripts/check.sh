#!/usr/bin/env bash
# The one command that proves Rampart works: installs what a fresh Debian machine lacks,
# starts PostgreSQL if nothing answers on 127.0.0.1:5432, then runs formatting, lints, the
# whole test suite (against real redis-server and PostgreSQL) and cargo-deny.
#
#   bash scripts/check.sh
#
# CI runs exactly this (through .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# --- System packages -------------------------------------------------------------------
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
command -v python3 >/dev/null || missing+=(python3)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# --- PostgreSQL --------------------------------------------------------------------------
# Tests use DATABASE_URL, else postgres@127.0.0.1:5432 (each test makes its own database).
if [ -z "${DATABASE_URL:-}" ] && ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  say "starting PostgreSQL"
  for version in $(ls /etc/postgresql); do
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 1 60); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
  pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
fi
if [ -z "${DATABASE_URL:-}" ] && ! psql -w -h 127.0.0.1 -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; then
  # A fresh Debian install asks for a password over TCP: give the test user one.
  say "setting a password for the postgres user (tests connect over TCP)"
  as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'rampart'\""
  export DATABASE_URL="postgres://postgres:rampart@127.0.0.1:5432/postgres"
fi

# --- cargo-deny --------------------------------------------------------------------------
if ! command -v cargo-deny >/dev/null; then
  say "installing cargo-deny"
  cargo install cargo-deny --locked --quiet
fi

# --- The checks --------------------------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all --check

say "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

say "cargo test"
cargo test --workspace

say "cargo deny"
cargo deny check bans licenses sources
# The advisory database is cloned from GitHub; a machine that cannot reach it cannot check
# advisories, and says so loudly instead of passing quietly.
if ! cargo deny check advisories 2>/tmp/rampart-deny-advisories.log; then
  if grep -q "failed to fetch advisory database" /tmp/rampart-deny-advisories.log; then
    echo "WARNING: advisories NOT checked: the RustSec database could not be fetched (no network)" >&2
  else
    cat /tmp/rampart-deny-advisories.log >&2
    exit 1
  fi
fi

say "all checks passed"
