import { type StatusSnapshot, type TypeView, type WindowCell, type WindowState, formatDuration } from './snapshot.js';

/**
 * The status page as one server-rendered HTML document: no script, one small inline style sheet.
 * Pure: the same snapshot and filter give the same bytes. Every text that comes from outside
 * (type names, replica ids, dead-letter reasons, the store URL, the filter) goes through `esc`.
 * Usable with 100 types: a summary line first, a filter, types with problems first and open,
 * the others one line each (name, window grid, watermark, leases) until opened.
 */
export interface PageFilter {
  /** Substring of the type name, case-insensitive. */
  q?: string;
  problemsOnly?: boolean;
}

/** Where the manifest of a window is served (read-only). */
export const MANIFEST_ROUTE = '/status/manifest';
const STATE_CLASS: Record<WindowState, string> = {
  closed: 'c',
  empty: 'e',
  finalizing: 'f',
  open: 'o',
  none: 'n',
};

/** At most this many types shown are opened whole; beyond it only the ones with problems. */
const OPEN_ALL_UP_TO = 10;

export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function manifestHref(eventType: string, start: number): string {
  return `${MANIFEST_ROUTE}/${encodeURIComponent(eventType)}/${start}`;
}

export function renderStatusPage(s: StatusSnapshot, filter: PageFilter = {}): string {
  const q = (filter.q ?? '').trim().toLowerCase();
  const shown = s.types
    .filter((t) => (!q || t.eventType.toLowerCase().includes(q)) && (!filter.problemsOnly || t.problems.length > 0))
    .sort((a, b) => Number(b.problems.length > 0) - Number(a.problems.length > 0) || compare(a.eventType, b.eventType));
  const openAll = shown.length <= OPEN_ALL_UP_TO;
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width"><meta http-equiv="refresh" content="15">',
    `<title>Hourglass status</title><style>${STYLE}</style></head><body>`,
    '<h1>Hourglass status</h1>',
    `<p id="summary">${summaryLine(s)}</p>`,
    `<p class="meta">store ${esc(s.store)} · served by ${esc(s.replicaId)} · ${iso(s.generatedAt)} · ` +
      `snapshot kept ${formatDuration(s.ttlMs)}, its refresh read the store ${s.storeReads} times</p>`,
    filterForm(filter, shown.length, s.types.length),
    LEGEND,
    '<main>',
    ...shown.map((t) => typeSection(t, s.generatedAt, openAll || t.problems.length > 0)),
    shown.length === 0 ? '<p>No type matches.</p>' : '',
    '</main></body></html>',
  ].join('\n');
}

function summaryLine(s: StatusSnapshot): string {
  const withProblems = s.types.filter((t) => t.problems.length > 0).length;
  const states = new Map<WindowState, number>();
  for (const t of s.types) for (const w of t.windows) states.set(w.state, (states.get(w.state) ?? 0) + 1);
  const leases = { live: 0, stale: 0, expired: 0 };
  for (const t of s.types) for (const l of t.leases) leases[l.state]++;
  const deadLetters = s.types.reduce((n, t) => n + t.deadLetters.count, 0);
  const dlTypes = s.types.filter((t) => t.deadLetters.count > 0).length;
  let oldest: TypeView | undefined;
  for (const t of s.types) {
    if (t.watermark !== undefined && Number.isFinite(t.watermark) && (!oldest || t.watermark < oldest.watermark!))
      oldest = t;
  }
  const parts = [
    `<b>${s.types.length}</b> types`,
    withProblems > 0 ? `<b class="bad">${withProblems} with problems</b>` : '<b class="good">no problems</b>',
    oldest
      ? `largest lag ${formatDuration(s.generatedAt - oldest.watermark!)} (${esc(oldest.eventType)})`
      : 'no watermark yet',
    `windows: ${states.get('closed') ?? 0} closed, ${states.get('empty') ?? 0} empty, ` +
      `${states.get('finalizing') ?? 0} finalizing, ${states.get('open') ?? 0} open`,
    `leases: ${leases.live} live, ${leases.stale} stale, ${leases.expired} expired`,
    `dead letters: ${deadLetters}${dlTypes > 0 ? ` in ${dlTypes} type(s)` : ''}`,
  ];
  return parts.join(' · ');
}

function filterForm(filter: PageFilter, shown: number, total: number): string {
  return (
    '<form method="get" action="/status">' +
    `<input name="q" value="${esc(filter.q ?? '')}" placeholder="type name contains" aria-label="filter types">` +
    `<label><input type="checkbox" name="problems" value="1"${filter.problemsOnly ? ' checked' : ''}> problems only</label>` +
    `<button>filter</button> <span id="shown">showing ${shown} of ${total} types</span></form>`
  );
}

const LEGEND =
  '<p class="legend">' +
  (['closed', 'empty', 'finalizing', 'open', 'none'] as const)
    .map((state) => `<span class="w ${STATE_CLASS[state]}"></span> ${state}`)
    .join(' ') +
  ' · <span class="w c">L</span> with late events · <span class="w c">!</span> with dead letters · times UTC, newest right; closed windows link to their manifest</p>';

function typeSection(t: TypeView, now: number, open: boolean): string {
  const problem = t.problems.length > 0;
  const live = t.leases.filter((l) => l.state === 'live').length;
  const summary =
    `<summary><span class="name" title="${esc(t.eventType)}">${esc(t.eventType)}</span>` +
    `<span class="grid">${t.windows.map((w) => cell(t.eventType, w, iso(now).slice(0, 10))).join('')}</span>` +
    `<span class="wm">${watermarkText(t, now)}</span>` +
    `<span>${live}/${t.leases.length} live</span>` +
    (t.deadLetters.count > 0 ? `<span class="bad">${t.deadLetters.count} dead</span>` : '<span>0 dead</span>') +
    (problem ? `<span class="why bad">${esc(t.problems[0]!)}</span>` : '') +
    '</summary>';
  return (
    `<details class="type${problem ? ' problem' : ''}" data-type="${esc(t.eventType)}"${open ? ' open' : ''}>` +
    summary +
    `<div class="body">${typeBody(t, now)}</div></details>`
  );
}

function typeBody(t: TypeView, now: number): string {
  const parts: string[] = [];
  if (t.problems.length > 0)
    parts.push(`<ul class="problems">${t.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>`);
  parts.push(
    `<p>global watermark ${t.watermark !== undefined && Number.isFinite(t.watermark) ? iso(t.watermark) : '-'}` +
      ` · last closed ${t.lastClosed !== undefined ? windowLabel(t.lastClosed, t.windowMs) : '-'}` +
      ` · windows of ${formatDuration(t.windowMs)}, grace ${formatDuration(t.graceMs)}</p>`,
  );
  parts.push(
    '<table class="leases"><tr><th>replica</th><th>lease</th><th>watermark</th><th>renewed</th></tr>' +
      t.leases
        .map(
          (l) =>
            `<tr><td>${esc(l.identity)}</td><td class="${l.state}">${l.state}</td>` +
            `<td>${l.watermark === null ? '-' : iso(l.watermark)}</td><td>${formatDuration(now - l.renewedAt)} ago</td></tr>`,
        )
        .join('') +
      '</table>',
  );
  if (t.local) {
    parts.push(
      `<p>this replica: ${t.local.heldEvents} events held unstaged, ${t.local.events} received, ` +
        `${t.local.deadLettered} dead-lettered since it started</p>`,
    );
  }
  if (t.deadLetters.count > 0) {
    const note = t.deadLetters.read < t.deadLetters.count ? ` (reasons of ${t.deadLetters.read} read so far)` : '';
    parts.push(
      `<p>${t.deadLetters.count} dead letter(s) on ${t.deadLetters.days.map(esc).join(', ')}${note}; latest reasons:</p>` +
        '<ul class="reasons">' +
        t.deadLetters.reasons
          .map(
            (r) =>
              `<li><b>${esc(r.code)}</b> ${esc(r.message)} <span class="meta">×${r.count}, latest ${iso(r.latestAt)}</span></li>`,
          )
          .join('') +
        '</ul>',
    );
  }
  return parts.join('');
}

/** A grid cell: colour by state (class), the details in its tooltip, a link when closed. */
function cell(eventType: string, w: WindowCell, today: string): string {
  const start = iso(w.start);
  // the day only when it is not the page's: keeps 1,200 cells of 100 types small
  const details = [`${start.slice(0, 10) === today ? '' : `${start.slice(0, 10)} `}${start.slice(11, 16)} ${w.state}`];
  if (w.records !== undefined) details.push(`${w.records} records`);
  if (w.late) details.push(`${w.late} late`);
  if (w.duplicates) details.push(`${w.duplicates} duplicates dropped`);
  if (w.deadLetters > 0) details.push(`${w.deadLetters} dead letters`);
  const marks = `${w.late ? 'L' : ''}${w.deadLetters > 0 ? '!' : ''}`;
  const attrs = `class="${STATE_CLASS[w.state]}" title="${esc(details.join(' · '))}"`;
  return w.state === 'closed' || w.state === 'empty'
    ? `<a ${attrs} href="${esc(manifestHref(eventType, w.start))}">${marks}</a>`
    : `<span ${attrs}>${marks}</span>`;
}

function watermarkText(t: TypeView, now: number): string {
  if (t.watermark === undefined || !Number.isFinite(t.watermark)) return 'no watermark';
  return `wm ${iso(t.watermark).slice(11, 19)} · lag ${formatDuration(now - t.watermark)}`;
}

function windowLabel(start: number, sizeMs: number): string {
  const from = iso(start);
  return `${from.slice(0, 10)} ${from.slice(11, 16)}–${iso(start + sizeMs).slice(11, 16)} UTC`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const STYLE = `body{font:14px system-ui,sans-serif;margin:1em;color:#222}h1{font-size:1.3em;margin:0 0 .3em}
.meta{color:#666;font-size:.85em}.bad{color:#b00}.good{color:#070}form{margin:.5em 0}
details{border-top:1px solid #ddd}details.problem{background:#fff6f6}summary{display:flex;gap:1em;align-items:center;padding:.25em 0;cursor:pointer}
.name{width:14em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;font-weight:600}.grid{display:flex;gap:2px}.wm{width:15em}
.grid>*,.w{display:inline-block;width:1.3em;height:1.3em;border-radius:2px;font-size:.75em;line-height:1.3em;text-align:center;color:#fff;text-decoration:none;font-weight:700;vertical-align:middle}
.c{background:#2a8a3e}.e{background:#9cc8a6}.f{background:#e0a000}.o{background:#6b8fd6}.n{background:#ddd}
.why{font-size:.85em}.body{padding:.2em 0 .6em 15em}table{border-collapse:collapse}td,th{padding:0 .8em 0 0;text-align:left}
td.live{color:#070}td.stale{color:#b60}td.expired{color:#888}ul{margin:.2em 0}`;
