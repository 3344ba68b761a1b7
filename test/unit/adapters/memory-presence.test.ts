import { MemoryPresence } from '../../../lambdas/adapters/memory-presence.js';
import { presenceContract, TIMINGS } from '../../support/contract/presence.js';

presenceContract('MemoryPresence', async () => ({ presence: new MemoryPresence(TIMINGS), close: async () => undefined }));
