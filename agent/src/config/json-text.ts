/**
 * JSON.parse for files an operator writes by hand. V8 names a syntax error by its byte offset ("at
 * position 1444") or not at all ("Unexpected token 'T', ... is not valid JSON"); a person editing a
 * config needs the line, the column and the line itself.
 */
import { ConfigError } from '../util/errors.js';

/** Parses `text`; a syntax error becomes a ConfigError naming `what`, the line and column, and showing the line. */
export function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    const at = /at position (\d+)/.exec(message);
    const offset = at ? Number(at[1]) : syntaxErrorOffset(text);
    // V8's own wording, without its offset or its copy of the text.
    const reason = message.replace(/,? ".*" is not valid JSON$/s, '').replace(/ in JSON at position \d+.*$/s, '').replace(/ of JSON input$/, ' of the file');
    const { line, column, excerpt } = locate(text, offset);
    throw new ConfigError(`${what} is not valid JSON: ${reason} at line ${line}, column ${column}\n${excerpt}`,
      [{ path: '', expected: `valid JSON (${reason} at line ${line}, column ${column})`, received: 'a syntax error' }], { cause: err });
  }
}

/** 1-based line and column of `offset`, and the line before it and the line itself with a caret under the column. */
function locate(text: string, offset: number): { line: number; column: number; excerpt: string } {
  const lines = text.split('\n');
  let start = 0;
  let index = 0;
  while (index < lines.length - 1 && start + lines[index].length + 1 <= offset) {
    start += lines[index].length + 1;
    index++;
  }
  const column = offset - start + 1;
  const gutter = String(index + 1).length;
  const show = (n: number, body: string) => `  ${String(n).padStart(gutter)} | ${body}`;
  // A long (minified) line is cut to the part around the column.
  const WINDOW = 60;
  const full = lines[index].replace(/\r$/, '');
  const from = Math.max(0, column - 1 - WINDOW);
  const body = `${from > 0 ? '…' : ''}${full.slice(from, column - 1 + WINDOW)}${column - 1 + WINDOW < full.length ? '…' : ''}`;
  // Same whitespace as the line (tabs stay tabs), so the caret sits under the column.
  const pad = `${from > 0 ? ' ' : ''}${full.slice(from, column - 1).replace(/[^\t]/g, ' ')}`;
  const rows = [];
  if (index > 0 && column <= WINDOW) rows.push(show(index, lines[index - 1].replace(/\r$/, '').slice(0, 2 * WINDOW)));
  rows.push(show(index + 1, body), `  ${' '.repeat(gutter)} | ${pad}^`);
  return { line: index + 1, column, excerpt: rows.join('\n') };
}

/**
 * Where JSON.parse stopped, for the errors V8 reports without an offset: the offset of the first
 * character that cannot continue a JSON text (RFC 8259), or the end of the text.
 */
export function syntaxErrorOffset(text: string): number {
  let i = 0;
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  const fail = (): never => { throw i; };
  const expect = (s: string) => {
    for (const ch of s) {
      if (text[i] !== ch) fail();
      i++;
    }
  };
  const digits = () => {
    const begin = i;
    while (i < text.length && text[i] >= '0' && text[i] <= '9') i++;
    if (i === begin) fail();
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        string();
        ws();
        expect(':');
        value();
        ws();
        if (text[i] === ',') { i++; continue; }
        expect('}');
        return;
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') { i++; return; }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') { i++; continue; }
        expect(']');
        return;
      }
    }
    if (c === '"') return string();
    if (c === 't') return expect('true');
    if (c === 'f') return expect('false');
    if (c === 'n') return expect('null');
    if (c === '-' || (c >= '0' && c <= '9')) {
      if (c === '-') i++;
      if (text[i] === '0') i++;
      else digits();
      if (text[i] === '.') { i++; digits(); }
      if (text[i] === 'e' || text[i] === 'E') {
        i++;
        if (text[i] === '+' || text[i] === '-') i++;
        digits();
      }
      return;
    }
    fail();
  };
  const string = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          i++;
          for (let k = 0; k < 4; k++, i++) if (!/[0-9a-fA-F]/.test(text[i] ?? '')) fail();
          continue;
        }
        if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail();
      }
      i++;
    }
    expect('"');
  };
  try {
    value();
    ws();
    return i < text.length ? i : text.length;
  } catch (at) {
    if (typeof at !== 'number') throw at;
    return Math.min(at, text.length);
  }
}
