/** The fan-out chart, written as plain SVG: deliveries per second against N, log–log, one line per contender. */

export interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  points: readonly { x: number; y: number }[];
}

const WIDTH = 720;
const HEIGHT = 420;
const MARGIN = { left: 80, right: 230, top: 48, bottom: 64 };

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function fanoutChart(series: readonly Series[], title: string, footnote: string): string {
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.map((p) => p.y)).filter((y) => y > 0);
  // A quarter decade of room on each side, so the end points sit inside the frame.
  const xMin = Math.log10(Math.min(...xs, 10)) - 0.25;
  const xMax = Math.log10(Math.max(...xs, 1000)) + 0.25;
  const yMin = Math.floor(Math.log10(Math.min(...ys, 1000)));
  const yMax = Math.ceil(Math.log10(Math.max(...ys, 10_000)));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const px = (x: number) => MARGIN.left + ((Math.log10(x) - xMin) / (xMax - xMin)) * plotW;
  const py = (y: number) => MARGIN.top + plotH - ((Math.log10(y) - yMin) / Math.max(1, yMax - yMin)) * plotH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  out.push(`<text x="${MARGIN.left}" y="24" font-size="15" font-weight="bold">${escape(title)}</text>`);
  for (let e = yMin; e <= yMax; e += 1) {
    const y = py(10 ** e);
    out.push(`<line x1="${MARGIN.left}" y1="${y.toFixed(1)}" x2="${MARGIN.left + plotW}" y2="${y.toFixed(1)}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${MARGIN.left - 8}" y="${(y + 4).toFixed(1)}" text-anchor="end">${(10 ** e).toLocaleString('en-US')}</text>`);
  }
  for (let e = Math.ceil(xMin); e <= Math.floor(xMax); e += 1) {
    const x = px(10 ** e);
    out.push(`<line x1="${x.toFixed(1)}" y1="${MARGIN.top}" x2="${x.toFixed(1)}" y2="${MARGIN.top + plotH}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${x.toFixed(1)}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${(10 ** e).toLocaleString('en-US')}</text>`);
  }
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 24}" text-anchor="middle">N (receiving connections in the conversation)</text>`);
  out.push(`<text transform="translate(20 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">deliveries per second (log)</text>`);
  series.forEach((s, i) => {
    const points = s.points.filter((p) => p.y > 0);
    const path = points.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ');
    if (points.length > 1) {
      out.push(`<polyline points="${path}" fill="none" stroke="${s.color}" stroke-width="2.5"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`);
    }
    for (const p of points) {
      out.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="4" fill="${s.color}"><title>${escape(`${s.name}, N=${p.x}: ${Math.round(p.y).toLocaleString('en-US')}/s`)}</title></circle>`);
    }
    const ly = MARGIN.top + 14 + i * 22;
    const lx = MARGIN.left + plotW + 16;
    out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2.5"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<circle cx="${lx + 12}" cy="${ly - 4}" r="4" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 32}" y="${ly}">${escape(s.name)}</text>`);
  });
  out.push(`<text x="${MARGIN.left}" y="${HEIGHT - 6}" font-size="10" fill="#666">${escape(footnote)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
