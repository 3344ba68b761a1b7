import { WebSocket } from 'ws'; // Node 20 has no global WebSocket; in a browser, leave this out (and the option below)
import { RelayClient } from '../index.js';

const local = process.env.RELAY_HTTP ?? 'http://127.0.0.1:3001'; // `npm start`: /dev/* exist only in the local emulator
await fetch(`${local}/dev/join?user=alice&conversation=demo`, { method: 'POST' });
const dev = async () => (await (await fetch(`${local}/dev/token?user=alice`)).json()) as { token: string; url: string };
const client = new RelayClient({
  url: (await dev()).url, // ws://127.0.0.1:3001/local; on AWS wss://{api}.execute-api.{region}.amazonaws.com/{stage}
  clientId: 'alice-laptop', // this device: what it has seen and acked is kept per device
  token: async () => (await dev()).token, // asked again before every reconnect
  WebSocket,
  conversations: ['demo'],
});
client.on('message', (m) => console.log(`#${m.seq}`, 'body' in m ? `${m.senderId}: ${m.body}` : '(deleted)')); // in seq order, once
client.on('reconnecting', (e) => console.log(`offline (${e.reason}); retrying in ${e.delayMs} ms`));
await client.connect();
console.log('sent', await client.send('demo', 'hello from Node')); // resent with the same clientMessageId if needed
client.close();
