#!/usr/bin/env node
import module from 'node:module';

// Node 22+ keeps V8's compiled code for the bundle between runs (a faster start).
module.enableCompileCache();
await import('../dist/bundle/formwork.mjs');
