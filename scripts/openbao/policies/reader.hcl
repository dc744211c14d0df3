# Tokenkeeper team store: the READER policy, for a teammate who may use the shared
# accounts' tokens but neither renew them (the lease cannot be written) nor change an
# account. KV version 2 mounted at `secret`, prefix `tokenkeeper`.
# Note: reading an account's `secrets` entry also reads its long-lived secrets
# (password, refresh token): this policy keeps a reader's Tokenkeeper from renewing,
# not a person from using what it can read.

# Every shared account's settings, secrets and lease: read only.
path "secret/data/tokenkeeper/accounts/*" {
  capabilities = ["read"]
}

# Their versions and the list of accounts.
path "secret/metadata/tokenkeeper/accounts/*" {
  capabilities = ["read", "list"]
}
