/**
 * A parser for the part of HCL's expression language that infra/*.tf uses to build the
 * services' environment. hcl2json hands every expression over as its source text inside
 * "${...}" (comments included), so this parses templates and the expressions inside them.
 * Anything it does not know — heredocs, template directives, splats, `...` — is an
 * UnsupportedHcl error, never a guess: the deployed-config suite must run exactly what
 * Terraform would hand the services, or fail.
 */
export type HclValue = string | number | boolean | null | HclValue[] | { [key: string]: HclValue };

export type Expr =
  | { kind: 'literal'; value: HclValue }
  | { kind: 'template'; parts: Array<string | Expr> }
  | { kind: 'name'; name: string }
  | { kind: 'attribute'; target: Expr; name: string }
  | { kind: 'index'; target: Expr; key: Expr }
  | { kind: 'call'; fn: string; args: Expr[] }
  | { kind: 'tuple'; items: Expr[] }
  | { kind: 'object'; items: Array<[Expr, Expr]> }
  | { kind: 'for'; keyVar?: string; valueVar: string; collection: Expr; key?: Expr; value: Expr; filter?: Expr }
  | { kind: 'conditional'; test: Expr; then: Expr; otherwise: Expr }
  | { kind: 'binary'; op: string; left: Expr; right: Expr }
  | { kind: 'unary'; op: '!' | '-'; operand: Expr };

/** The evaluator met HCL it does not implement: the suite stops rather than guess. */
export class UnsupportedHcl extends Error {
  constructor(what: string, source: string, at: number) {
    super(`deployed-config evaluator: unsupported HCL: ${what} at ${JSON.stringify(source.slice(at, at + 60))}`);
  }
}

/** Lowest binding first; each level's operators. */
const BINARY_LEVELS: readonly (readonly string[])[] = [
  ['||'],
  ['&&'],
  ['==', '!='],
  ['<=', '>=', '<', '>'],
  ['+', '-'],
  ['*', '/', '%'],
];
const IDENT = /[A-Za-z_][A-Za-z0-9_-]*/y;
const NUMBER = /[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' };

/** Parses a string as hcl2json gives it: a template, possibly one "${...}" interpolation alone. */
export function parseTemplate(source: string): Expr {
  const p = new Parser(source);
  const parts = p.templateParts(null);
  return parts.length === 1 && typeof parts[0] !== 'string' ? parts[0]! : { kind: 'template', parts };
}

class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  private fail(what: string): never {
    throw new UnsupportedHcl(what, this.src, this.pos);
  }

  /** Literal text and interpolations up to `close` (a quote) or the end of the source (null). */
  templateParts(close: '"' | null): Array<string | Expr> {
    const parts: Array<string | Expr> = [];
    let text = '';
    for (;;) {
      if (this.pos >= this.src.length) {
        if (close) this.fail('unterminated string');
        break;
      }
      const c = this.src[this.pos]!;
      if (close && c === close) {
        this.pos++;
        break;
      }
      if (this.src.startsWith('$${', this.pos) || this.src.startsWith('%%{', this.pos)) {
        text += this.src.slice(this.pos + 1, this.pos + 3);
        this.pos += 3;
      } else if (this.src.startsWith('%{', this.pos)) {
        this.fail('template directive');
      } else if (this.src.startsWith('${', this.pos)) {
        if (text) parts.push(text);
        text = '';
        this.pos += 2;
        parts.push(this.expression());
        this.expect('}');
      } else if (close && c === '\\') {
        text += this.escape();
      } else {
        text += c;
        this.pos++;
      }
    }
    if (text || parts.length === 0) parts.push(text);
    return parts;
  }

  private escape(): string {
    const e = this.src[this.pos + 1] ?? '';
    if (e === 'u') {
      const hex = this.src.slice(this.pos + 2, this.pos + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('escape');
      this.pos += 6;
      return String.fromCharCode(parseInt(hex, 16));
    }
    const out = ESCAPES[e];
    if (out === undefined) this.fail(`escape \\${e}`);
    this.pos += 2;
    return out;
  }

  /** Skips blanks, newlines and all three comment forms. */
  private skip(): void {
    for (;;) {
      const rest = this.src.slice(this.pos, this.pos + 2);
      if (/^\s/.test(rest)) this.pos++;
      else if (rest[0] === '#' || rest === '//') {
        const nl = this.src.indexOf('\n', this.pos);
        this.pos = nl < 0 ? this.src.length : nl + 1;
      } else if (rest === '/*') {
        const end = this.src.indexOf('*/', this.pos + 2);
        if (end < 0) this.fail('unterminated comment');
        this.pos = end + 2;
      } else return;
    }
  }

  private peek(token: string): boolean {
    this.skip();
    if (!this.src.startsWith(token, this.pos)) return false;
    // '=' must not be read as the start of '==' or '=>', '<' of '<=' and so on.
    const next = this.src[this.pos + token.length];
    if (/^[=<>!]$/.test(token) && (next === '=' || (token === '=' && next === '>'))) return false;
    return true;
  }

  private accept(token: string): boolean {
    if (!this.peek(token)) return false;
    this.pos += token.length;
    return true;
  }

  private expect(token: string): void {
    if (!this.accept(token)) this.fail(`expected "${token}"`);
  }

  private ident(): string | undefined {
    this.skip();
    IDENT.lastIndex = this.pos;
    const m = IDENT.exec(this.src);
    if (!m) return undefined;
    this.pos += m[0].length;
    return m[0];
  }

  private peekKeyword(word: string): boolean {
    this.skip();
    IDENT.lastIndex = this.pos;
    return IDENT.exec(this.src)?.[0] === word;
  }

  expression(): Expr {
    const test = this.binary(0);
    if (!this.accept('?')) return test;
    const then = this.expression();
    this.expect(':');
    return { kind: 'conditional', test, then, otherwise: this.expression() };
  }

  private binary(level: number): Expr {
    if (level === BINARY_LEVELS.length) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      const op = BINARY_LEVELS[level]!.find((o) => this.peek(o));
      if (!op) return left;
      this.pos += op.length;
      left = { kind: 'binary', op, left, right: this.binary(level + 1) };
    }
  }

  private unary(): Expr {
    if (this.accept('!')) return { kind: 'unary', op: '!', operand: this.unary() };
    if (this.accept('-')) return { kind: 'unary', op: '-', operand: this.unary() };
    return this.postfix(this.primary());
  }

  private postfix(target: Expr): Expr {
    for (;;) {
      if (this.peek('[*]') || this.peek('.*')) this.fail('splat');
      if (this.accept('[')) {
        const key = this.expression();
        this.expect(']');
        target = { kind: 'index', target, key };
      } else if (this.peek('.') && !this.peek('...')) {
        this.pos++;
        const name = this.ident();
        if (name === undefined) this.fail('attribute name');
        target = { kind: 'attribute', target, name };
      } else return target;
    }
  }

  private primary(): Expr {
    this.skip();
    if (this.src.startsWith('<<', this.pos)) this.fail('heredoc');
    if (this.accept('"')) {
      const parts = this.templateParts('"');
      return parts.length === 1 && typeof parts[0] === 'string'
        ? { kind: 'literal', value: parts[0] }
        : { kind: 'template', parts };
    }
    if (this.accept('(')) {
      const inner = this.expression();
      this.expect(')');
      return inner;
    }
    if (this.accept('[')) return this.peekKeyword('for') ? this.forExpr(']') : this.tuple();
    if (this.accept('{')) return this.peekKeyword('for') ? this.forExpr('}') : this.object();
    NUMBER.lastIndex = this.pos;
    const num = NUMBER.exec(this.src);
    if (num) {
      this.pos += num[0].length;
      return { kind: 'literal', value: Number(num[0]) };
    }
    const name = this.ident();
    if (name === undefined) this.fail('expression');
    if (name === 'true' || name === 'false') return { kind: 'literal', value: name === 'true' };
    if (name === 'null') return { kind: 'literal', value: null };
    if (this.accept('(')) return { kind: 'call', fn: name, args: this.callArgs() };
    return { kind: 'name', name };
  }

  private callArgs(): Expr[] {
    const args: Expr[] = [];
    while (!this.accept(')')) {
      args.push(this.expression());
      if (this.peek('...')) this.fail('argument expansion');
      if (!this.accept(',')) {
        this.expect(')');
        break;
      }
    }
    return args;
  }

  private tuple(): Expr {
    const items: Expr[] = [];
    while (!this.accept(']')) {
      items.push(this.expression());
      if (!this.accept(',')) {
        this.expect(']');
        break;
      }
    }
    return { kind: 'tuple', items };
  }

  /** Items separated by commas or newlines; a bare identifier key is a string. */
  private object(): Expr {
    const items: Array<[Expr, Expr]> = [];
    while (!this.accept('}')) {
      const start = this.pos;
      const bare = this.ident();
      let key: Expr;
      if (bare !== undefined && (this.peek('=') || this.peek(':'))) key = { kind: 'literal', value: bare };
      else {
        this.pos = start;
        key = this.expression();
      }
      if (!this.accept('=') && !this.accept(':')) this.fail('expected "=" in object');
      items.push([key, this.expression()]);
      this.accept(',');
    }
    return { kind: 'object', items };
  }

  private forExpr(close: ']' | '}'): Expr {
    this.ident(); // 'for'
    const first = this.ident();
    const second = this.accept(',') ? (this.ident() ?? this.fail('for variables')) : undefined;
    if (first === undefined) this.fail('for variables');
    if (this.ident() !== 'in') this.fail('expected "in"');
    const collection = this.expression();
    this.expect(':');
    const key = close === '}' ? this.expression() : undefined;
    if (key) this.expect('=>');
    const value = this.expression();
    if (this.peek('...')) this.fail('for grouping');
    let filter: Expr | undefined;
    if (this.peekKeyword('if')) {
      this.ident();
      filter = this.expression();
    }
    this.expect(close);
    const vars = second === undefined ? { valueVar: first } : { keyVar: first, valueVar: second };
    return { kind: 'for', ...vars, collection, ...(key ? { key } : {}), value, ...(filter ? { filter } : {}) };
  }
}
