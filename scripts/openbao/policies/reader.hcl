# Tokenkeeper team store: the READER policy, for a teammate who may use the shared
# accounts' tokens but neither renew them nor change an account. It reads each
# account's settings, its lease (which version is newest) and its `token` entry (the
# token in use and its expiry, copied there at every renewal), never its `secrets`:
# a reader holds no refresh token, password or API key, so neither its Tokenkeeper
# nor a person with its login can make new tokens. KV version 2 mounted at `secret`,
# prefix `tokenkeeper`.

# An account's settings, its token for readers and its renewal lease: read only.
path "secret/data/tokenkeeper/accounts/+/account" {
  capabilities = ["read"]
}
path "secret/data/tokenkeeper/accounts/+/token" {
  capabilities = ["read"]
}
path "secret/data/tokenkeeper/accounts/+/lease" {
  capabilities = ["read"]
}

# Their versions and the list of accounts (versions only, no values).
path "secret/metadata/tokenkeeper/accounts/*" {
  capabilities = ["read", "list"]
}
