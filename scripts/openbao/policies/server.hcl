# Tokenkeeper team store: the SERVER policy, for a headless `tokenkeeper watch` (or
# `tokenkeeper agent --no-tray`) logging in with AppRole. It renews the shared
# accounts (writes their secrets and lease) but cannot change or remove an account,
# and it keeps its own vault key under `hosts/`. KV version 2 mounted at `secret`,
# prefix `tokenkeeper`. `auth/token/renew-self` and `auth/token/lookup-self` come
# from the `default` policy, which AppRole tokens get unless the role says
# token_no_default_policy=true.

# An account's settings: read only.
path "secret/data/tokenkeeper/accounts/+/account" {
  capabilities = ["read"]
}

# An account's secrets, their token's copy for readers and its renewal lease: read,
# and check-and-set writes.
path "secret/data/tokenkeeper/accounts/+/secrets" {
  capabilities = ["create", "read", "update"]
}
path "secret/data/tokenkeeper/accounts/+/token" {
  capabilities = ["create", "read", "update"]
}
path "secret/data/tokenkeeper/accounts/+/lease" {
  capabilities = ["create", "read", "update"]
}

# The accounts' versions and their list (no removal).
path "secret/metadata/tokenkeeper/accounts/*" {
  capabilities = ["read", "list"]
}

# The server's own items (its vault key) under hosts/<vault-id>/.
path "secret/data/tokenkeeper/hosts/*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "secret/metadata/tokenkeeper/hosts/*" {
  capabilities = ["read", "list", "delete"]
}
