// duplicateMemberAt: the path of a member named twice in one object, wherever it is nested, and nothing else.
import { describe, expect, test } from "bun:test";
import { duplicateMemberAt } from "./json-body.ts";

describe("duplicateMemberAt", () => {
  test.each([
    ['{"a":1,"a":2}', "a"],
    ['{"a":{"x":1,"y":2,"x":3}}', "a.x"],
    ['{"items":[{"sku":"a"},{"sku":"b","quantity":1,"sku":"c"}]}', "items.1.sku"],
    ['[[{"k":1}],[{"k":1},{"k":1,"k":2}]]', "1.1.k"],
    ['{"a":{"b":[]},"c":[1,{"d":"}"}],"a":0}', "a"],
    ['{"\\"":1,"\\u0022":2}', '"'],
    ['{ "a" : 1 , "a" : 2 }', "a"],
  ])("%p names %p", (text, path) => {
    expect(duplicateMemberAt(text)).toBe(path);
  });

  test.each([
    '{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}',
    '{"a":"a","b":"\\"a\\":1"}',
    '["a","a"]',
    '{"a\\\\":1,"a":2}',
    "{}",
    "[]",
    '"x"',
    "42",
    // Not JSON (an escape it does not have): no answer, and no throw (the validator says what is wrong).
    '{"a\\x":1,"a\\x":2}',
    '{"a\\u12":1}',
  ])("%p has none", (text) => {
    expect(duplicateMemberAt(text)).toBeUndefined();
  });
});
