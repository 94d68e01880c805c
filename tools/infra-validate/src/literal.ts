import { closingBracket, splitTopLevel } from './hcl-shape';

/**
 * What an argument's expression is, as far as it can be known without evaluating it: a
 * literal (string with its value, number, bool, null, list, object), a string template, a
 * choice between literal strings (`c ? "A" : "B"`), or anything else (references, calls),
 * whose type only Terraform's evaluation knows and which the check leaves alone.
 */
export type Shape =
  | { kind: 'string'; value: string }
  | { kind: 'template' }
  | { kind: 'number' | 'bool' | 'null' | 'object' }
  | { kind: 'list'; elements: Shape[] | undefined }
  | { kind: 'choice'; values: string[] }
  | { kind: 'expression' };

const NUMBER = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;
const PLAIN_STRING = /^"(?:[^"\\$%]|\\.|\$(?!\{)|%(?!\{))*"$/;

export function shapeOf(expression: string): Shape {
  const text = expression.trim();
  if (PLAIN_STRING.test(text)) return { kind: 'string', value: JSON.parse(text) as string };
  if (text.startsWith('<<')) return { kind: 'template' };
  if (text.startsWith('"') && closingBracket(text, 0) === text.length) return { kind: 'template' };
  if (NUMBER.test(text)) return { kind: 'number' };
  if (text === 'true' || text === 'false') return { kind: 'bool' };
  if (text === 'null') return { kind: 'null' };
  if (text.startsWith('[') && closingBracket(text, 0) === text.length) {
    const inner = text.slice(1, -1).trim();
    if (/^for\s/.test(inner)) return { kind: 'list', elements: undefined };
    const elements = inner === '' ? [] : splitTopLevel(inner, ',').filter((e) => e !== '');
    return { kind: 'list', elements: elements.map(shapeOf) };
  }
  if (text.startsWith('{') && closingBracket(text, 0) === text.length) return { kind: 'object' };
  return choiceOf(text) ?? { kind: 'expression' };
}

/** `condition ? "A" : "B"` with two plain string results. */
function choiceOf(text: string): Shape | undefined {
  const parts = splitTopLevel(text, '?');
  if (parts.length !== 2 || parts[1] === undefined) return undefined;
  const branches = splitTopLevel(parts[1], ':');
  if (branches.length !== 2) return undefined;
  const values = branches.map(shapeOf);
  if (!values.every((v): v is { kind: 'string'; value: string } => v.kind === 'string')) return undefined;
  return { kind: 'choice', values: values.map((v) => v.value) };
}
