'use strict';
// index.d.ts stays precise and in step with index.js.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { it } = require('node:test');
const rampart = require('..');

const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
// Declarations only: comments removed.
const code = dts.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');

it('declares no `any` and no bare `Function`', () => {
  assert.doesNotMatch(code, /\bany\b/);
  assert.doesNotMatch(code, /\bFunction\b/);
});

it('declares every runtime export, and nothing that is not one', () => {
  const declared = new Set(
    [...code.matchAll(/export declare (?:const|function|class) (\w+)/g)].map((m) => m[1]),
  );
  assert.deepEqual([...declared].sort(), Object.keys(rampart).sort());
});
