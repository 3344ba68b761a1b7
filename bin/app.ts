#!/usr/bin/env node
import { createApp } from '../lib/app.js';
import { ContextError } from '../lib/settings.js';

// The CDK CLI runs this file; the app synthesizes itself when the process ends.
try {
  createApp();
} catch (error) {
  if (!(error instanceof ContextError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
