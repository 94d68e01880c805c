/**
 * The shape of an HCL file: which names in each body are arguments (`name = expr`) and which
 * are blocks (`name "label" { ... }`), with each argument's expression as source text.
 * hcl2json's JSON form cannot tell `containers { ... }` from `containers = [{ ... }]`, and
 * Terraform refuses one where the other belongs, so the check reads this shape instead.
 * It assumes the file already parsed as HCL (validate() runs hcl2json first).
 */
export interface HclAttribute {
  name: string;
  /** Source text of the expression, comments and surrounding space dropped. */
  expression: string;
  line: number;
}

export interface HclBlock {
  type: string;
  labels: string[];
  body: HclBody;
  line: number;
}

export interface HclBody {
  attributes: HclAttribute[];
  blocks: HclBlock[];
}

const IDENTIFIER = /[A-Za-z_][A-Za-z0-9_-]*/y;
const CLOSERS: Record<string, string> = { '(': ')', '[': ']', '{': '}' };

export function parseShape(source: string): HclBody {
  const scanner = new Scanner(source);
  const body = scanner.body();
  scanner.skipSpace(true);
  if (!scanner.done()) throw scanner.error('unexpected "}"');
  return body;
}

/** Splits `text` at `separator` where it is outside brackets, strings and templates. */
export function splitTopLevel(text: string, separator: string): string[] {
  const scanner = new Scanner(text);
  const parts: string[] = [];
  let start = 0;
  while (!scanner.done()) {
    if (scanner.peek() === separator) {
      parts.push(text.slice(start, scanner.pos).trim());
      scanner.pos++;
      start = scanner.pos;
    } else scanner.skipToken();
  }
  parts.push(text.slice(start).trim());
  return parts;
}

/** The index just past the bracket that closes the one at `open`, or -1. */
export function closingBracket(text: string, open: number): number {
  const scanner = new Scanner(text);
  scanner.pos = open;
  scanner.skipToken();
  return scanner.pos;
}

class Scanner {
  pos = 0;
  constructor(private readonly text: string) {}

  done(): boolean {
    return this.pos >= this.text.length;
  }

  peek(offset = 0): string {
    return this.text[this.pos + offset] ?? '';
  }

  error(message: string): Error {
    return new Error(`line ${this.line()}: ${message}`);
  }

  line(at = this.pos): number {
    let n = 1;
    for (let i = 0; i < at; i++) if (this.text[i] === '\n') n++;
    return n;
  }

  /** Spaces and comments; newlines too when `newlines`. */
  skipSpace(newlines: boolean): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\r' || (newlines && c === '\n')) this.pos++;
      else if (c === '#' || (c === '/' && this.peek(1) === '/')) this.skipLine();
      else if (c === '/' && this.peek(1) === '*') {
        const end = this.text.indexOf('*/', this.pos + 2);
        this.pos = end < 0 ? this.text.length : end + 2;
      } else return;
    }
  }

  private skipLine(): void {
    const end = this.text.indexOf('\n', this.pos);
    this.pos = end < 0 ? this.text.length : end;
  }

  body(): HclBody {
    const body: HclBody = { attributes: [], blocks: [] };
    for (;;) {
      this.skipSpace(true);
      if (this.done() || this.peek() === '}') return body;
      const line = this.line();
      const name = this.identifier();
      this.skipSpace(false);
      if (this.peek() === '=' && this.peek(1) !== '=') {
        this.pos++;
        body.attributes.push({ name, expression: this.expression(), line });
      } else {
        body.blocks.push({ type: name, ...this.blockRest(), line });
      }
    }
  }

  private identifier(): string {
    IDENTIFIER.lastIndex = this.pos;
    const match = IDENTIFIER.exec(this.text);
    if (!match) throw this.error(`expected a name, found ${JSON.stringify(this.peek())}`);
    this.pos += match[0].length;
    return match[0];
  }

  private blockRest(): { labels: string[]; body: HclBody } {
    const labels: string[] = [];
    for (;;) {
      this.skipSpace(false);
      const c = this.peek();
      if (c === '{') break;
      if (c === '"') {
        const start = this.pos;
        this.skipString();
        labels.push(JSON.parse(this.text.slice(start, this.pos)) as string);
      } else labels.push(this.identifier());
    }
    this.pos++;
    const body = this.body();
    if (this.peek() !== '}') throw this.error('block not closed');
    this.pos++;
    return { labels, body };
  }

  /** An argument's expression: up to the end of its line (or the `}` of a one-line block). */
  private expression(): string {
    this.skipSpace(false);
    const start = this.pos;
    let end = start;
    for (;;) {
      const c = this.peek();
      if (this.done() || c === '\n' || c === '}' || c === '#' || (c === '/' && /[/*]/.test(this.peek(1)))) break;
      this.skipToken();
      end = this.pos;
      this.skipSpace(false);
    }
    return this.text.slice(start, end).trim();
  }

  /** One token, or a whole bracketed group / string / heredoc with everything inside it. */
  skipToken(): void {
    const c = this.peek();
    if (c === '"') this.skipString();
    else if (c === '<' && this.peek(1) === '<' && /[-A-Za-z_]/.test(this.peek(2))) this.skipHeredoc();
    else if (CLOSERS[c]) this.skipGroup(CLOSERS[c]);
    else this.pos++;
  }

  private skipGroup(closer: string): void {
    this.pos++;
    for (;;) {
      this.skipSpace(true);
      if (this.done()) throw this.error(`missing "${closer}"`);
      if (this.peek() === closer) {
        this.pos++;
        return;
      }
      this.skipToken();
    }
  }

  private skipString(): void {
    this.pos++;
    for (;;) {
      const c = this.peek();
      if (this.done() || c === '\n') throw this.error('unterminated string');
      if (c === '\\') this.pos += 2;
      else if (c === '"') {
        this.pos++;
        return;
      } else if ((c === '$' || c === '%') && this.peek(1) === '{') {
        this.pos++;
        this.skipGroup('}');
      } else this.pos++;
    }
  }

  private skipHeredoc(): void {
    const marker = /^<<-?([A-Za-z_][A-Za-z0-9_]*)[^\n]*\n/.exec(this.text.slice(this.pos));
    if (!marker?.[1]) throw this.error('bad heredoc');
    const endTag = new RegExp(`^[ \\t]*${marker[1]}[ \\t]*$`, 'm');
    const rest = this.text.slice(this.pos + marker[0].length);
    const found = endTag.exec(rest);
    if (!found) throw this.error(`heredoc ${marker[1]} not closed`);
    this.pos += marker[0].length + found.index + found[0].length;
  }
}
