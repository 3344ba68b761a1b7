import { en } from 'zod/locales';
import { config } from 'zod/mini';

/**
 * The functions use the tree-shakeable `zod/mini` API (the classic API bundles every locale and adds ~430 kB
 * to each function). Mini loads no messages by default: importing this module once installs English ones.
 * Import zod itself as `import * as z from 'zod/mini'` — re-exporting that namespace would defeat tree-shaking.
 */
config(en());
