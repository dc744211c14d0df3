import { describe, expect, it } from "vitest";
import { FORMS } from "../test/fixtures";
import { cleanFields, fillIn, isHttps, missingFields, nameProblem, splitLabels, trustProblem } from "./accountForm";

const FIELDS = FORMS[0].methods[0].fields;

describe("nameProblem", () => {
  it("wants 1 to 64 characters without spaces", () => {
    expect(nameProblem("")).toBe("Give the account a name.");
    expect(nameProblem("a".repeat(64))).toBeNull();
    expect(nameProblem("a".repeat(65))).toBe("The account name can be at most 64 characters.");
    expect(nameProblem("prod bigid")).toContain("cannot contain spaces");
    expect(nameProblem("prod\tbigid")).toContain("cannot contain spaces");
    expect(nameProblem("prod-bigid_2")).toBeNull();
  });
});

describe("splitLabels", () => {
  it("trims, drops empties and repeats, keeps the order", () => {
    expect(splitLabels("prod, eu,prod ,, ")).toEqual(["prod", "eu"]);
    expect(splitLabels("")).toEqual([]);
  });
});

describe("cleanFields", () => {
  it("keeps only the method's own fields, trimmed, without the empty ones", () => {
    expect(cleanFields(FIELDS, { username: "  ops ", tenant: " ", scope: "openid" })).toEqual({ username: "ops" });
  });
});

describe("missingFields", () => {
  it("names the required fields left empty or blank", () => {
    expect(missingFields(FIELDS, {})).toEqual(["Username"]);
    expect(missingFields(FIELDS, { username: "   " })).toEqual(["Username"]);
    expect(missingFields(FIELDS, { username: "ops" })).toEqual([]);
  });
});

describe("isHttps", () => {
  it("knows an https address whatever its case and leading spaces", () => {
    expect(isHttps("  HTTPS://bigfix:52311")).toBe(true);
    expect(isHttps("http://127.0.0.1:47811")).toBe(false);
    expect(isHttps("bigfix.example.com")).toBe(false);
  });
});

describe("trustProblem", () => {
  it("refuses a CA certificate and a fingerprint together, and allows either or none", () => {
    expect(trustProblem("-----BEGIN CERTIFICATE-----", "ab".repeat(32))).toContain("not both");
    expect(trustProblem("-----BEGIN CERTIFICATE-----", "  ")).toBeNull();
    expect(trustProblem("", "ab")).toBeNull();
    expect(trustProblem("", "")).toBeNull();
  });
});

describe("fillIn", () => {
  it("lists what is missing as a sentence", () => {
    expect(fillIn([])).toBeNull();
    expect(fillIn(["Password"])).toBe("Fill in Password.");
    expect(fillIn(["the instance URL", "Username", "Password"])).toBe(
      "Fill in the instance URL, Username and Password.",
    );
  });
});
