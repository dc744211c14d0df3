// Accounts as the shell lists them, for the unit tests: one valid account unless told otherwise.
import type { AccountSummary, VendorForm } from "../ipc";

export function summary(overrides: Partial<AccountSummary> = {}): AccountSummary {
  const name = overrides.name ?? "acct";
  return {
    id: `id-${name}`,
    name,
    vendor: "truesight",
    vendor_name: "BMC TrueSight",
    base_url: "https://ts.example.com",
    method: "password",
    username: "ops",
    labels: [],
    state: "valid",
    expires_at_ms: null,
    human_deadline_ms: null,
    renews_with: "stored-password",
    last_error: null,
    team: null,
    ...overrides,
  };
}

export const FORMS: VendorForm[] = [
  {
    vendor: "truesight",
    vendor_name: "BMC TrueSight",
    url_hint: "https://truesight.example.com",
    methods: [
      {
        method: "password",
        label: "Username and password",
        secret_label: "Password",
        fields: [
          { key: "username", label: "Username", required: true, help: "", default: null },
          { key: "tenant", label: "Tenant", required: false, help: "", default: "BmcRealm" },
        ],
      },
    ],
  },
  {
    vendor: "biganimal",
    vendor_name: "EDB BigAnimal",
    url_hint: "https://portal.biganimal.com",
    methods: [{ method: "device-code", label: "Browser sign-in", secret_label: null, fields: [] }],
  },
];
