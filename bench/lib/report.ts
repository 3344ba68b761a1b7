import type { ProfileSummary } from './profile.js';
import type { Throughput } from './throughput.js';
import type { BenchResults } from './results.js';
import { dollars, kB, ratio, table } from './table.js';
import { REFERENCE } from '../scenarios/coldstart.js';
import { DYNAMO_REQUEST_PRICES_ASKED, DYNAMO_REQUEST_PRICES_NOW, PRICES } from './prices.js';
import { median, round } from './stats.js';

const pct = (share: number) => `${(share * 100).toFixed(1)}%`;

function rate(t: Throughput): string {
  const notes = [
    t.runs === undefined ? '' : `runs ${t.runs.map((r) => r.toLocaleString('en-US')).join(' / ')}`,
    t.complete ? '' : 'timed out',
    t.extra > 0 ? `${t.extra} duplicates` : '',
  ].filter((n) => n !== '');
  return `${t.perSecond.toLocaleString('en-US')}${notes.length === 0 ? '' : ` (${notes.join(', ')})`}`;
}

function profileTable(summary: ProfileSummary, limit = 8): string {
  return table(
    ['where (self time)', 'share of busy CPU'],
    summary.byPackage.slice(0, limit).map((p) => [p.name, pct(p.share)]),
  );
}

/** Every result as markdown tables (printed after the run and saved beside latest.json). */
export function renderReport(r: BenchResults): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`# relay-ws bench — ${r.date}${r.quick ? ' (quick)' : ''}`);
  out.push('');
  out.push(
    `Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}, redis-server ${m.redis}; ` +
      `1-min load ${m.loadStart} at start, ${m.loadEnd} at end. Wall time ${r.wallSeconds.toFixed(0)} s.`,
  );
  out.push(`Setup: ${r.setup.services}; receiving clients: ${r.setup.clients}; ${r.setup.window} frames in flight; FANOUT_THRESHOLD ${r.setup.fanoutThreshold ?? '–'}.`);
  for (const e of r.errors) out.push(`**${e.scenario} failed:** ${e.message}`);

  const f = r.fanout;
  if (f !== undefined) {
    out.push('', '## Fan-out throughput (deliveries per second)', '');
    out.push(
      table(
        ['N', 'messages', 'path', 'ours', 'naive SDK Promise.all', 'raw ws ceiling', 'ours / raw', 'ours / naive'],
        f.rows.map((row) => [
          row.n,
          row.messages,
          row.path === 'sqs' ? 'SQS + worker' : 'inline',
          rate(row.ours),
          rate(row.naive),
          row.raw.perSecond.toLocaleString('en-US'),
          ratio(row.oursOverRaw),
          ratio(row.oursOverNaive),
        ]),
      ),
    );
    if (f.whatIf.length > 0) {
      out.push('', 'What-if on the same path (a prototype swapped into the handlers\' context):', '');
      out.push(
        table(
          ['N', 'variant', 'deliveries/s', 'vs ours as is', 'used by the handlers'],
          f.whatIf.map((w) => [w.n, w.variant, w.ours.perSecond.toLocaleString('en-US'), `${w.gain >= 0 ? '+' : ''}${(w.gain * 100).toFixed(0)}%`, w.applied ? 'yes' : 'NO'])
        ),
      );
    }
    if (f.placementChecks.length > 0) {
      out.push('', 'Where the receiving clients run (same N, same path):', '');
      out.push(
        table(
          ['N', 'clients', 'ours', 'raw ws'],
          f.placementChecks.map((p) => [p.n, p.placement === 'child' ? 'child process' : 'bench process', p.ours.perSecond.toLocaleString('en-US'), p.raw.perSecond.toLocaleString('en-US')]),
        ),
      );
    }
    if (f.posters.length > 0) {
      out.push('', 'Management API posts through the emulator, one poster at a time (POST_CONCURRENCY in flight):', '');
      out.push(
        table(
          ['poster', 'posts/s', 'CPU µs per post (poster + emulator)', 'failed'],
          f.posters.map((p) => [p.contender, p.perSecond.toLocaleString('en-US'), p.cpuMicrosPerPost, p.failed]),
        ),
      );
    }
    for (const p of f.profiles) {
      out.push('', `CPU profile of the bench process, ours at N=${p.n}${p.variant === undefined ? '' : ` with ${p.variant}`} (busy ${pct(p.summary.busy)} of ${(p.summary.totalMs / 1000).toFixed(1)} s):`, '');
      out.push(profileTable(p.summary));
    }
  }

  const t = r.typing;
  if (t !== undefined) {
    out.push('', `## Typing latency (${t.members} members, one frame every ~${t.spacingMs} ms after the last arrival)`, '');
    const rows = [{ variant: 'as is', latency: t.latency }, ...t.whatIf.map((w) => ({ variant: `what-if: ${w.variant}`, latency: w.latency }))];
    out.push(
      table(
        ['path', 'samples', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'last member p99 ms', 'timeouts'],
        rows.map(({ variant, latency: l }) => [variant, l.samples, l.p50, l.p95, l.p99, l.max, l.lastP99, l.timeouts]),
      ),
    );
    if (t.waterfalls.length > 0) {
      out.push('', 'Where one typing frame spends its time (medians of a traced pass, ms):', '');
      out.push(
        table(
          ['path', 'gateway → handler', 'binding', 'rate limit (Redis)', 'registry Query', 'posts (first → last)', 'total'],
          t.waterfalls.map((w) => [w.variant, w.toHandler, w.bindingGet, w.admit, w.registryQuery, w.posts, w.total]),
        ),
      );
    }
    const b = t.burst;
    if (b !== undefined) {
      out.push(
        '',
        `Typing under a burst (${b.sockets} sockets of one user × ${b.framesPerSocket} starts within ${b.spreadMs} ms; coalesced on the server, ` +
          `nothing fanned out above ${b.largeConversationMembers} members):`,
        '',
      );
      out.push(
        table(
          ['recipients', 'members', 'frames', 'posts', 'posts per frame', 'posts before (every frame to every recipient)', 'Redis round trips per frame'],
          b.rows.map((row) => [
            row.recipients,
            `${row.members}${row.aboveSizeLimit ? ' (above the limit)' : ''}`,
            row.frames,
            row.posts,
            row.postsPerFrame,
            row.postsBefore,
            row.redisPerFrame,
          ]),
        ),
      );
    }
  }

  const c = r.cold;
  if (c !== undefined) {
    out.push('', `## Cold start (fresh \`node\` per sample, NODE_OPTIONS=${c.nodeOptions}, esbuild target ${c.target}${c.target === c.stackTarget ? ' as the stack' : ` (the stack uses ${c.stackTarget})`}, Node ${c.node})`, '');
    out.push(`Floor (empty handler, same banner and settings): import ${c.floor.loadMs} ms + first call ${c.floor.firstMs} ms = ${c.floor.totalMs} ms.`);
    out.push(
      `Reference (${REFERENCE}: the DynamoDB document client alone, bundled like the functions, built from the environment on its first call, ` +
        `which sends one GetItem to the connections table): import ${c.reference.loadMs} ms + first call ${c.reference.firstMs} ms = ${c.reference.totalMs} ms ` +
        `(p90 ${c.reference.totalP90Ms} ms, ${kB(c.reference.bytes)}).`,
    );
    const ratios = c.rows.map((row) => row.overReference);
    out.push(`Median function: ${round(median(ratios), 2)}× the reference; highest ${Math.max(...ratios)}×.`);
    out.push('');
    out.push(
      table(
        ['handler', 'bundle', 'gzip', 'import ms', 'first call ms', 'total ms', 'p90 ms', 'over floor ms', '÷ reference', 'samples', 'top contributors'],
        c.rows.map((row) => [
          row.name,
          kB(row.bytes),
          kB(row.gzipBytes),
          row.loadMs,
          row.firstMs,
          row.totalMs,
          row.totalP90Ms,
          row.overFloorMs,
          `${row.overReference}×`,
          `${row.samples}${row.failures > 0 ? ` (${row.failures} failed: ${row.lastFailure ?? ''})` : ''}`,
          row.top.slice(0, 4).map((p) => `${p.name} ${kB(p.bytes)}`).join(', '),
        ]),
      ),
    );
    if (c.withoutSourceMaps.length > 0) {
      out.push('', 'What `--enable-source-maps` costs (same samples, the flag off):', '');
      out.push(table(['bundle', 'with the flag ms', 'without ms'], c.withoutSourceMaps.map((w) => [w.name, w.withMs, w.totalMs])));
    }
    if (c.dependencies.length > 0) {
      out.push('', 'Import cost of each dependency alone, and of each route\'s own needs, bundled like the stack (an empty first call):', '');
      out.push(
        table(
          ['dependency', 'bundle', 'import ms', 'import + call ms', 'over floor ms', '÷ reference'],
          c.dependencies.map((d) => [d.name, kB(d.bytes), d.loadMs, d.totalMs, d.overFloorMs, `${round(d.totalMs / c.reference.totalMs, 2)}×`]),
        ),
      );
    }
    for (const p of c.profiles) {
      out.push('', `CPU profile of one cold ${p.name} sample (import + first call, mapped through the source map, ${(p.summary.totalMs).toFixed(0)} ms sampled):`, '');
      out.push(profileTable(p.summary, 10));
    }
  }

  const sent = r.sent;
  if (sent !== undefined) {
    out.push('', '## Time to `sent` (sendMessage through the emulator; N receiving sockets plus the sender)', '');
    out.push(
      'One frame at a time: frame sent → `sent` on the sender\'s socket, and → the last of the N recipients has the message. ' +
        `Then ${sent.window} frames in flight: deliveries per second at the receivers, \`sent\` per second at the sender. ` +
        'Delay: every Management API request waits that long before it is acted on (the gateway\'s `managementDelayMs`).',
      '',
    );
    out.push(
      table(
        ['N', 'delay ms', 'samples', 'sent p50 ms', 'sent p99 ms', 'last recipient p50 ms', 'last recipient p99 ms', 'timeouts', `deliveries/s (${sent.window} in flight)`, 'sent/s', 'errors'],
        sent.rows.map((row) => [
          row.n,
          row.delayMs,
          row.samples,
          row.sentP50,
          row.sentP99,
          row.lastP50,
          row.lastP99,
          row.timeouts,
          `${row.throughput.perSecond.toLocaleString('en-US')}${row.throughput.complete ? '' : ' (timed out)'}`,
          row.throughput.sentPerSecond,
          Object.entries(row.errors).map(([code, n]) => `${n} ${code}`).join(', ') || '–',
        ]),
      ),
    );
  }

  const o = r.ops;
  if (o !== undefined) {
    out.push('', `## Operations and cost per event (warm container, ${o.memoryMb} MB arm64; $ per million events at the current DynamoDB prices)`, '');
    out.push(
      table(
        ['event', 'N', 'DynamoDB calls', 'RRU', 'WRU', 'Redis round trips (in-script cmds)', 'posts', 'API GW msgs', 'ms here', 'reads', 'API GW', 'Lambda', 'DynamoDB', 'total', `Scan-based (${o.scan.tableRows.toLocaleString('en-US')} rows)`],
        o.rows.map((row) => [
          `${row.route}${row.steady ? '' : ' (varied)'}`,
          row.members,
          Object.entries(row.dynamo.calls).map(([op, n]) => `${n} ${op}`).join(', ') || '0',
          row.dynamo.readUnits,
          row.dynamo.writeUnits,
          `${row.redis.roundTrips} (${row.redis.scriptCommands})`,
          row.posts,
          row.gatewayMessages,
          row.durationMs,
          row.note || '–',
          dollars(row.cost.apiGateway),
          dollars(row.cost.lambdaRequests + row.cost.lambdaCompute),
          dollars(row.cost.dynamo),
          dollars(row.cost.total),
          row.scanCost === undefined ? '–' : dollars(row.scanCost.total),
        ]),
      ),
    );
    out.push(
      '',
      `Scan-based: the same event with the registry Query replaced by a Scan of a ${o.scan.tableRows.toLocaleString('en-US')}-row connections table ` +
        `(${o.scan.bytesPerRow} B a row → ${o.scan.readUnits} RRU per event; dynalite's own count for ${o.scan.check.rows.toLocaleString('en-US')} such rows: ` +
        `${o.scan.check.measured} RRU vs ${o.scan.check.computed} computed). AWS's sample also posts to every connection in the table, not only the conversation's.`,
    );
    const st = o.stored;
    out.push(
      '',
      `Dollars per million messages (one sendMessage + one ack by each of the N − 1 recipients; DynamoDB requests at $${DYNAMO_REQUEST_PRICES_ASKED.perMillionWriteUnits} / ` +
        `$${DYNAMO_REQUEST_PRICES_ASKED.perMillionReadUnits} per million WRU / RRU, and at today's $${DYNAMO_REQUEST_PRICES_NOW.perMillionWriteUnits} / $${DYNAMO_REQUEST_PRICES_NOW.perMillionReadUnits}; ` +
        `storage at $${o.prices.dynamoStoragePerGbMonth}/GB-month: the message item ${st.messageItem} B + its index entry ${st.messageIndexEntry} B kept a month, ` +
        `the idempotency item ${st.idempotencyItem} B kept 7 days; 100 B overhead each included):`,
      '',
    );
    out.push(
      table(
        ['N', 'API GW', 'Lambda', 'DynamoDB requests', 'storage', 'total', 'DynamoDB requests (today)', 'total (today)'],
        o.messageCosts.map((m) => [m.members, dollars(m.apiGateway), dollars(m.lambda), dollars(m.dynamoRequestsAsked), dollars(m.storage), dollars(m.total), dollars(m.dynamoRequestsNow), dollars(m.totalNow)]),
      ),
    );
    const k = o.contention;
    if (k !== undefined) {
      const ops = (byOperation: Record<string, number>) => Object.entries(byOperation).map(([op, n]) => `${n} ${op}`).join(', ');
      out.push(
        '',
        `sendMessage into one conversation, ${k.messages} messages: one at a time ${k.alone.dynamoCalls} DynamoDB calls a message (${ops(k.alone.byOperation)}; ${k.alone.writeUnits} WRU, ${k.alone.readUnits} RRU); ` +
          `${k.inFlight} in flight ${k.contended.dynamoCalls} a message (${ops(k.contended.byOperation)}; ${k.contended.writeUnits} WRU reported, ${k.contended.writeUnitsBilled} as billed with the failed conditional writes; ${k.contended.readUnits} RRU), ` +
          `failed calls ${Object.entries(k.contended.failures).map(([f, n]) => `${n} ${f}`).join(', ') || 'none'}, error answers ${Object.entries(k.contended.errors).map(([e, n]) => `${n} ${e}`).join(', ') || 'none'}, ${k.contended.msPerMessage} ms a message.`,
      );
    }
    const u = o.getUnacked;
    out.push(
      '',
      `getUnacked of a device with ${u.pending.toLocaleString('en-US')} pending (pages of ${u.pageLimit}): the first page ${Object.entries(u.dynamo.calls).map(([k2, v]) => `${v} ${k2}`).join(', ') || 'no DynamoDB call'} ` +
        `(${u.dynamo.readUnits} RRU, ${u.dynamo.writeUnits} WRU), ${u.roundTrips} Redis round trip${u.roundTrips === 1 ? '' : 's'} (${Object.entries(u.byCommand).map(([k2, v]) => `${v} ${k2}`).join(', ') || 'none'}), ` +
        `${u.messages} messages, hasMore ${String(u.hasMore)}; all ${u.pending.toLocaleString('en-US')} take ${u.pagesToDrain} frames = ${u.dynamoCallsToDrain} DynamoDB calls (${u.readUnitsToDrain} RRU) and ${u.roundTripsToDrain} Redis round trips.`,
    );
    out.push(
      '',
      `getHistory of the same conversation (the newest ${u.history.limit}): ${Object.entries(u.history.dynamo.calls).map(([k2, v]) => `${v} ${k2}`).join(', ') || 'no DynamoDB call'} ` +
        `(${u.history.dynamo.readUnits} RRU), ${u.history.redisRoundTrips} Redis round trip${u.history.redisRoundTrips === 1 ? '' : 's'}, ${u.history.messages} messages, hasMore ${String(u.history.hasMore)}.`,
    );
    out.push(
      '',
      `Connection time is billed apart: ${o.connectionMinutes.map((c2) => `${c2.members} members online ${c2.hoursPerDay} h/day for ${c2.days} days = ${dollars(c2.dollars)}`).join('; ')}.`,
    );
  }

  const conn = r.connections;
  if (conn !== undefined) {
    const ms = (l: { p50: number; p99: number; samples: number } | undefined) => (l === undefined ? '–' : `${l.p50} / ${l.p99}`);
    out.push('', `## Connections: $connect, subscribe, $disconnect (one device of a user in ${conn.conversations} conversations; warm containers, one event at a time)`, '');
    out.push(
      table(
        ['event', 'samples', 'p50 / p99 ms', 'last page p50 / p99 ms', 'DynamoDB calls', 'by operation', 'RRU', 'WRU (dynalite)', 'WRU + index', 'Redis round trips', 'posts', 'API GW msgs'],
        conn.rows.map((row) => [
          `${row.label}${row.steady ? '' : ' (varied)'}`,
          row.samples,
          ms(row.latency),
          ms(row.lastPage),
          row.dynamoCalls,
          Object.entries(row.byOperation).map(([op, n]) => `${n} ${op}`).join(', ') || '0',
          row.readUnits,
          row.writeUnits,
          row.writeUnitsBilled,
          row.redisRoundTrips,
          row.posts,
          row.gatewayMessages,
        ]),
      ),
    );
    out.push(
      '',
      `Latency: socket opened → \`open\` for $connect (the whole handshake through the emulator), frame sent → \`subscribed\` for subscribe, → the last \`unacked\` page for the resume ` +
        `(${conn.missed} missed messages in each conversation). $disconnect: socket closed → the handler removed every row (checked straight in dynalite). ` +
        `Counts are means per event (each sample's when not marked varied); a subscribe is its connection's first frame, so it reads the connection record (one GetItem). ` +
        `dynalite's ConsumedCapacity leaves out index writes: *WRU + index* adds one per subscription row written or deleted (each is also an entry of the conversation index), as DynamoDB bills it; the comparison below uses it.`,
    );
    const k = conn.comparison;
    const side = (pick: (s: typeof k.v1) => string | number): [string | number, string | number] => [pick(k.v1), pick(k.v2)];
    const line = (name: string, [v1, v2]: [string | number, string | number]): (string | number)[] => [name, v1, v2];
    out.push('', `One device in ${k.conversations} conversations: v1 (a socket per conversation) against v2 (one socket, one subscribe):`, '');
    out.push(
      table(
        ['per device', `v1 (${k.v1.sockets} sockets)`, `v2 (${k.v2.sockets} socket)`],
        [
          line('connection-minutes per device-hour', side((s) => s.connectionMinutesPerHour)),
          line(`connection-minutes $ per device-hour ($${PRICES.apiGatewayPerMillionConnectionMinutes}/M)`, side((s) => `$${s.dollarsPerDeviceHour.toFixed(6)}`)),
          line(`connection-minutes $ for ${k.month.devices.toLocaleString('en-US')} devices online ${k.month.hoursPerDay} h/day, ${k.month.days} days`, side((s) => dollars(s.dollarsPerMonth))),
          line('Lambda invocations per (re)connect', side((s) => s.invocations)),
          line(`API GW messages per (re)connect ($${PRICES.apiGatewayPerMillionMessages}/M)`, side((s) => s.gatewayMessages)),
          line('DynamoDB calls per (re)connect', side((s) => s.dynamoCalls)),
          line('RRU / WRU (with the index) per (re)connect', side((s) => `${s.readUnits} / ${s.writeUnits}`)),
          line('$ per million (re)connects (API GW msgs + Lambda + DynamoDB)', side((s) => dollars(s.dollarsPerMillionConnects))),
          line('$disconnect invocations / DynamoDB calls / WRU', side((s) => `${s.disconnectInvocations} / ${s.disconnectDynamoCalls} / ${s.disconnectWriteUnits}`)),
          line('keep-alive messages per hour (≥ 1 ping + pong per socket per 10 idle min)', side((s) => s.keepAliveMessagesPerHour)),
        ],
      ),
    );
    out.push(
      '',
      `Lambda compute is priced at each event's measured p50 (${k.memoryMb} MB), an upper bound on the handler's duration. ` +
        `v1 in ${k.conversations} conversations also exceeds MAX_CONNECTIONS_PER_USER (${k.maxConnectionsPerUser}): sockets past the ${k.maxConnectionsPerUser}th are refused with 429.`,
    );
  }

  const reads = r.reads;
  if (reads !== undefined) {
    out.push('', `## Reads: getConversations and markRead (a user in ${reads.settings.conversations} conversations of ${reads.settings.messages} messages, ${reads.unreadConversations} with unread; warm containers)`, '');
    out.push(
      table(
        ['event', 'samples', 'p50 / p99 ms', 'DynamoDB calls', 'by operation', 'RRU', 'WRU', 'Redis round trips', 'posts', 'note'],
        reads.rows.map((row) => [
          `${row.label}${row.steady ? '' : ' (varied)'}`,
          row.samples,
          `${row.p50Ms} / ${row.p99Ms}`,
          Object.values(row.dynamo.calls).reduce((sum, n) => sum + n, 0),
          Object.entries(row.dynamo.calls).map(([op, n]) => `${n} ${op}`).join(', ') || '0',
          round(row.dynamo.readUnits, 1),
          round(row.dynamo.writeUnits, 1),
          row.redisRoundTrips,
          row.posts,
          row.note,
        ]),
      ),
    );
  }

  out.push('', '## Targets', '');
  out.push(
    table(
      ['target', 'goal', 'measured', 'met', 'with a variant'],
      r.targets.map((t) => [t.name, t.target, t.measured, t.met === undefined ? '–' : t.met ? 'yes' : 'NO', t.withPrototype ?? '']),
    ),
  );
  return `${out.join('\n')}\n`;
}
