# Tokenkeeper team store: the MEMBER policy, for a teammate's desktop (token or
# userpass login). It reads the shared accounts' tokens, renews them (writes their
# secrets and their renewal lease), shares accounts and changes their settings
# (`team add`), lists them (`team join`, `team list`) and removes them from the team
# store for everyone. KV version 2 mounted at `secret`, prefix `tokenkeeper`.

# Every shared account's settings, secrets, token for readers and lease: read, create, update
# (check-and-set writes are creates and updates).
path "secret/data/tokenkeeper/accounts/*" {
  capabilities = ["create", "read", "update"]
}

# Their versions (read), the list of accounts (list) and removal of an entry with all
# its versions (delete: `bao kv metadata delete`).
path "secret/metadata/tokenkeeper/accounts/*" {
  capabilities = ["read", "list", "delete"]
}
