#!/usr/bin/env node
// Keeps the docs true enough to follow: every relative link in the README, the docs pages and the two package
// pages points at a file of this repository (and at a heading of it when an anchor is given), no http(s) URL
// points off this machine, and every ts, python and json code block parses. Run by `npm test` and
// `npm run docs:check`.
//
// The markdown is read line by line by hand: the only structure needed is fences, headings and links, and the
// repository has no markdown parser among its own dependencies (adding one for this would be a dependency of
// every install). TypeScript blocks use the compiler's parser (syntax only, no type check); Python blocks go to
// one Python process that runs ast.parse on each.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ts = createRequire(import.meta.url)('typescript');

/** The pages a reader can reach: the README, the npm and PyPI package pages, and everything under docs/. */
function pages() {
  const named = ['README.md', 'libs/snakepit/README.md', 'python/README.md'].map((file) => join(root, file));
  const docs = readdirSync(join(root, 'docs'), { recursive: true })
    .map((entry) => join(root, 'docs', String(entry)))
    .filter((file) => file.endsWith('.md') && !file.includes(`${sep}__pycache__${sep}`) && statSync(file).isFile());
  return [...named, ...docs.sort()];
}

const problems = [];
const report = (file, line, message) => problems.push(`${relative(root, file)}:${line}: ${message}`);

/**
 * GitHub's heading anchor: lower case, punctuation dropped (letters, digits, `_`, `-` and spaces kept), each space a
 * hyphen, repeats numbered -1, -2... Written here because it is five lines and the slugger GitHub uses is not a
 * dependency of this repository.
 */
function slugger() {
  const seen = new Map();
  return (heading) => {
    const text = heading
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/[`*]/g, '')
      .trim()
      .toLowerCase();
    const base = text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    return count === 0 ? base : `${base}-${count}`;
  };
}

/** One page split into what the checks need: code blocks, headings (as anchors) and prose lines. */
function parse(file) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const blocks = [];
  const prose = [];
  const anchors = new Set();
  const slug = slugger();
  let fence = null;
  let inComment = false;
  lines.forEach((text, index) => {
    const line = index + 1;
    if (fence) {
      const close = text.match(/^\s*(`{3,}|~{3,})\s*$/);
      if (close && close[1][0] === fence.marker[0] && close[1].length >= fence.marker.length) {
        blocks.push(fence);
        fence = null;
      } else {
        fence.code.push(text.slice(Math.min(fence.indent, text.length - text.trimStart().length)));
      }
      return;
    }
    if (inComment || text.includes('<!--')) {
      // Comments hold notes for the editors of a page (e.g. where a section's text is to come); never links.
      const open = inComment ? '' : text.slice(0, text.indexOf('<!--'));
      const end = text.indexOf('-->', inComment ? 0 : text.indexOf('<!--'));
      inComment = end < 0;
      const rest = end < 0 ? '' : text.slice(end + 3);
      if (open.trim() || rest.trim()) prose.push({ line, text: `${open} ${rest}` });
      return;
    }
    const open = text.match(/^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/);
    if (open) {
      fence = { marker: open[2], indent: open[1].length, lang: open[3].toLowerCase(), line, code: [] };
      return;
    }
    const heading = text.match(/^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/);
    if (heading) anchors.add(slug(heading[1]));
    prose.push({ line, text });
  });
  if (fence) report(file, fence.line, `code block opened with ${fence.marker} is never closed`);
  return { blocks, prose, anchors };
}

const parsed = new Map();
const parsedPage = (file) => {
  if (!parsed.has(file)) parsed.set(file, parse(file));
  return parsed.get(file);
};

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

function checkUrls(file, line, text) {
  for (const [url, host] of text.matchAll(/\bhttps?:\/\/(\[[\da-f:.]+\]|[^\s/:?#)`'"<>\]]+)[^\s)`'"<>]*/gi)) {
    if (!LOOPBACK.test(host)) report(file, line, `${url} leaves this machine: describe it, or link a file of the repository`);
  }
}

function inRepository(target) {
  const rel = relative(root, target);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep));
}

function checkLink(file, line, target) {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
    if (!/^https?:/i.test(target)) report(file, line, `${target}: only links into the repository (or to a loopback URL)`);
    return; // http(s): checked as a URL with the rest of the line
  }
  const [pathPart, anchor] = target.split('#', 2);
  const path = decodeURIComponent(pathPart);
  const resolved = path === '' ? file : path.startsWith('/') ? join(root, path) : resolve(dirname(file), path);
  if (!inRepository(resolved)) return report(file, line, `${target} points outside the repository`);
  if (!existsSync(resolved)) return report(file, line, `${target}: no such file or directory`);
  if (anchor !== undefined && resolved.endsWith('.md') && !parsedPage(resolved).anchors.has(anchor)) {
    report(file, line, `${target}: ${relative(root, resolved)} has no heading with the anchor #${anchor}`);
  }
}

function checkProse(file, { prose }) {
  let links = 0;
  for (const { line, text } of prose) {
    checkUrls(file, line, text);
    // A path in code that climbs out of its folder must still land inside the repository.
    for (const [, code] of text.matchAll(/`([^`]+)`/g)) {
      if (/^\.\.\//.test(code) && !inRepository(resolve(dirname(file), code.split(/\s/)[0]))) {
        report(file, line, `\`${code}\` names a path outside the repository`);
      }
    }
    const bare = text.replace(/`[^`]*`/g, '');
    for (const [, target] of bare.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      links += 1;
      checkLink(file, line, target);
    }
    const definition = bare.match(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+["'(].*)?$/);
    if (definition) {
      links += 1;
      checkLink(file, line, definition[1]);
    }
  }
  return links;
}

function checkTypeScript(file, block) {
  const kind = ['js', 'javascript', 'mjs', 'cjs'].includes(block.lang) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const source = ts.createSourceFile('block.ts', block.code.join('\n'), ts.ScriptTarget.Latest, false, kind);
  // parseDiagnostics is what program.getSyntacticDiagnostics() returns for a TS file: the parse, no type check.
  for (const diagnostic of source.parseDiagnostics) {
    const { line } = source.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    report(file, block.line + 1 + line, `${block.lang} block does not parse: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`);
  }
}

function checkJson(file, block) {
  const code = block.code.join('\n');
  try {
    JSON.parse(code);
  } catch (whole) {
    // JSON Lines (one object per line, as log lines are shown) parse line by line.
    const lines = block.code.map((text, index) => ({ text, index })).filter(({ text }) => text.trim() !== '');
    const bad = lines.find(({ text }) => {
      try {
        JSON.parse(text);
        return false;
      } catch {
        return true;
      }
    });
    if (bad || lines.length < 2) report(file, block.line + 1 + (bad?.index ?? 0), `json block does not parse: ${whole.message}`);
  }
}

/** Every Python block goes to one interpreter, which answers with the syntax errors it found. */
function checkPython(items) {
  if (items.length === 0) return;
  const program = [
    'import ast, json, sys',
    'found = []',
    'for i, code in enumerate(json.load(sys.stdin)):',
    '    try:',
    '        ast.parse(code)',
    '    except SyntaxError as e:',
    '        found.append([i, e.lineno or 1, e.msg])',
    'print(json.dumps(found))',
  ].join('\n');
  const venv = join(root, '.venv', 'bin', 'python');
  const python = existsSync(venv) ? venv : 'python3';
  const input = JSON.stringify(items.map(({ block }) => block.code.join('\n')));
  const run = spawnSync(python, ['-c', program], { input, encoding: 'utf8' });
  if (run.status !== 0) {
    problems.push(`check-docs: ${python} could not check the Python blocks: ${run.error?.message ?? run.stderr}`);
    return;
  }
  for (const [index, line, message] of JSON.parse(run.stdout)) {
    const { file, block } = items[index];
    report(file, block.line + line, `python block does not parse: ${message}`);
  }
}

const PARSED = { ts: 'ts', typescript: 'ts', tsx: 'ts', js: 'ts', javascript: 'ts', mjs: 'ts', cjs: 'ts', python: 'python', py: 'python', json: 'json' };

const files = pages();
const counts = { links: 0, parsed: {}, unparsed: {} };
const python = [];
for (const file of files) {
  if (!existsSync(file)) {
    report(file, 1, 'page is missing');
    continue;
  }
  const page = parsedPage(file);
  counts.links += checkProse(file, page);
  for (const block of page.blocks) {
    const kind = PARSED[block.lang];
    const tally = kind ? counts.parsed : counts.unparsed;
    const name = kind ?? (block.lang || 'plain');
    tally[name] = (tally[name] ?? 0) + 1;
    for (const [index, text] of block.code.entries()) checkUrls(file, block.line + 1 + index, text);
    if (kind === 'ts') checkTypeScript(file, block);
    else if (kind === 'json') checkJson(file, block);
    else if (kind === 'python') python.push({ file, block });
  }
}
checkPython(python);

const list = (tally) =>
  Object.entries(tally)
    .map(([lang, n]) => `${lang} ${n}`)
    .join(', ') || 'none';
const summary = `${files.length} pages, ${counts.links} links, code blocks parsed: ${list(counts.parsed)}; not parsed: ${list(counts.unparsed)}`;
if (problems.length > 0) {
  console.error(`check-docs: ${problems.length} problem(s) in ${summary}`);
  for (const problem of problems) console.error(`  ${problem}`);
  process.exit(1);
}
console.log(`check-docs: ok: ${summary}`);
