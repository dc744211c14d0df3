import { describe, expect, it } from "vitest";
import { FORMS, summary } from "../test/fixtures";
import {
  NO_FILTER,
  applyFilter,
  byUrgency,
  labelsOf,
  mergeListing,
  methodLabel,
  sameSummary,
  secretLabel,
  sortByUrgency,
  vendorsOf,
} from "./accounts";

describe("sortByUrgency", () => {
  it("puts what needs a human first, then expired, renew-soon and valid", () => {
    const list = [
      summary({ name: "v", state: "valid" }),
      summary({ name: "r", state: "renew-soon" }),
      summary({ name: "n", state: "needs-sign-in" }),
      summary({ name: "e", state: "expired" }),
    ];
    expect(sortByUrgency(list).map((a) => a.name)).toEqual(["n", "e", "r", "v"]);
    expect(list.map((a) => a.name)).toEqual(["v", "r", "n", "e"]);
  });

  it("within a state: the nearest human deadline, then the nearest expiry, none last, then the name", () => {
    const list = [
      summary({ name: "no-deadline", expires_at_ms: 10 }),
      summary({ name: "late", human_deadline_ms: 500 }),
      summary({ name: "soon", human_deadline_ms: 100 }),
      summary({ name: "x-expires-later", expires_at_ms: 20 }),
      summary({ name: "never" }),
      summary({ name: "acct10" }),
      summary({ name: "acct9" }),
    ];
    expect(sortByUrgency(list).map((a) => a.name)).toEqual([
      "soon",
      "late",
      "no-deadline",
      "x-expires-later",
      "acct9",
      "acct10",
      "never",
    ]);
  });

  it("compares names without regard to case", () => {
    expect(byUrgency(summary({ name: "Prod" }), summary({ name: "prod" }))).toBe(0);
  });
});

describe("applyFilter", () => {
  const list = [
    summary({ name: "ts-prod", labels: ["prod", "eu"] }),
    summary({ name: "bf", vendor: "bigfix", vendor_name: "HCL BigFix", base_url: "https://bigfix:52311", state: "needs-sign-in" }),
    summary({ name: "ba", vendor: "biganimal", vendor_name: "EDB BigAnimal", username: "Alice" }),
  ];

  it("answers the same list when nothing filters", () => {
    expect(applyFilter(list, NO_FILTER)).toBe(list);
    expect(applyFilter(list, { ...NO_FILTER, search: "   " })).toBe(list);
  });

  it("searches name, user, vendor, URL and labels without regard to case", () => {
    const names = (search: string) => applyFilter(list, { ...NO_FILTER, search }).map((a) => a.name);
    expect(names("ALICE")).toEqual(["ba"]);
    expect(names("52311")).toEqual(["bf"]);
    expect(names("bigfix")).toEqual(["bf"]);
    expect(names("eu")).toEqual(["ts-prod"]);
    expect(names("nothing-like-it")).toEqual([]);
  });

  it("combines the vendor, state and label filters with the search", () => {
    expect(applyFilter(list, { ...NO_FILTER, vendor: "bigfix" }).map((a) => a.name)).toEqual(["bf"]);
    expect(applyFilter(list, { ...NO_FILTER, state: "valid" }).map((a) => a.name)).toEqual(["ts-prod", "ba"]);
    expect(applyFilter(list, { ...NO_FILTER, label: "prod" }).map((a) => a.name)).toEqual(["ts-prod"]);
    expect(applyFilter(list, { ...NO_FILTER, label: "prod", search: "ba" })).toEqual([]);
  });
});

describe("labelsOf and vendorsOf", () => {
  it("lists every label once, sorted", () => {
    const list = [summary({ name: "a", labels: ["prod", "eu"] }), summary({ name: "b", labels: ["eu", "dev"] })];
    expect(labelsOf(list)).toEqual(["dev", "eu", "prod"]);
  });

  it("offers every known vendor and any vendor only seen in the list, by name", () => {
    const list = [summary({ name: "i", vendor: "immuta", vendor_name: "Immuta" })];
    expect(vendorsOf(list, FORMS)).toEqual([
      { id: "truesight", name: "BMC TrueSight" },
      { id: "biganimal", name: "EDB BigAnimal" },
      { id: "immuta", name: "Immuta" },
    ]);
  });
});

describe("methodLabel and secretLabel", () => {
  it("word the method and its secret as the vendor's form does", () => {
    expect(methodLabel(FORMS, "truesight", "password")).toBe("Username and password");
    expect(secretLabel(FORMS, "truesight", "password")).toBe("Password");
    expect(secretLabel(FORMS, "biganimal", "device-code")).toBeNull();
  });

  it("fall back to plain words for a vendor the forms do not know", () => {
    expect(methodLabel([], "immuta", "api-key")).toBe("API key");
    expect(secretLabel([], "immuta", "api-key")).toBe("API key");
    expect(secretLabel([], "oidc", "device-code")).toBeNull();
  });
});

describe("sameSummary", () => {
  it("compares every field, and labels element by element", () => {
    const a = summary({ labels: ["prod", "eu"] });
    expect(sameSummary(a, summary({ labels: ["prod", "eu"] }))).toBe(true);
    expect(sameSummary(a, summary({ labels: ["eu", "prod"] }))).toBe(false);
    expect(sameSummary(a, summary({ labels: ["prod"] }))).toBe(false);
    expect(sameSummary(a, summary({ labels: ["prod", "eu"], expires_at_ms: 5 }))).toBe(false);
    expect(sameSummary(a, summary({ labels: ["prod", "eu"], last_error: "refused" }))).toBe(false);
  });

  it("tells apart a copy with a field the other lacks", () => {
    const a = summary();
    const extra = { ...a, added_later: 1 } as unknown as typeof a;
    expect(sameSummary(a, extra)).toBe(false);
  });
});

describe("mergeListing", () => {
  it("answers the previous list itself when nothing changed, in whatever order the shell listed it", () => {
    const previous = sortByUrgency([summary({ name: "a" }), summary({ name: "b", state: "expired" })]);
    const fresh = [summary({ name: "a" }), summary({ name: "b", state: "expired" })];
    expect(mergeListing(previous, fresh)).toBe(previous);
  });

  it("sorts a changed listing and keeps the objects of the unchanged accounts", () => {
    const previous = sortByUrgency([summary({ name: "a" }), summary({ name: "b" })]);
    const merged = mergeListing(previous, [summary({ name: "a" }), summary({ name: "b", state: "needs-sign-in" })]);
    expect(merged).not.toBe(previous);
    expect(merged.map((a) => a.name)).toEqual(["b", "a"]);
    expect(merged[1]).toBe(previous[0]);
    expect(merged[0]).not.toBe(previous[1]);
    expect(merged[0].state).toBe("needs-sign-in");
  });

  it("adds and drops accounts", () => {
    const previous = [summary({ name: "a" })];
    expect(mergeListing(previous, [summary({ name: "b" })]).map((a) => a.name)).toEqual(["b"]);
    expect(mergeListing(previous, [])).toEqual([]);
    expect(mergeListing([], [])).toEqual([]);
  });
});
