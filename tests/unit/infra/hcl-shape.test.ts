import { parseShape } from '../../../tools/infra-validate/src/hcl-shape';
import { shapeOf } from '../../../tools/infra-validate/src/literal';

/** The HCL reader behind tools/infra-validate: where arguments and blocks begin and end. */
test('arguments, blocks, labels and one-line blocks, whatever strings, comments and heredocs hold', () => {
  const source = [
    'resource "a" "b" { # a comment with { and "',
    '  name = "x}{" // another }',
    '  tpl  = "${join("}", ["{"])}/y"',
    '  /* a block comment } */',
    '  doc = <<-EOT',
    '    text with } and {',
    '  EOT',
    '  list = [',
    '    "a", # inside a list',
    '    { k = "v" },',
    '  ]',
    '  inner { one = 1 }',
    '  dynamic "env" {',
    '    for_each = local.e',
    '    content {',
    '      name = env.key',
    '    }',
    '  }',
    '}',
  ].join('\n');
  const [resource] = parseShape(source).blocks;
  expect(resource?.labels).toEqual(['a', 'b']);
  expect(resource?.body.attributes.map((a) => [a.name, a.expression, a.line])).toEqual([
    ['name', '"x}{"', 2],
    ['tpl', '"${join("}", ["{"])}/y"', 3],
    ['doc', '<<-EOT\n    text with } and {\n  EOT', 5],
    ['list', '[\n    "a", # inside a list\n    { k = "v" },\n  ]', 8],
  ]);
  expect(resource?.body.blocks.map((b) => [b.type, b.labels, b.line])).toEqual([
    ['inner', [], 12],
    ['dynamic', ['env'], 13],
  ]);
  expect(resource?.body.blocks[0]?.body.attributes).toEqual([{ name: 'one', expression: '1', line: 12 }]);
  expect(resource?.body.blocks[1]?.body.blocks[0]?.body.attributes[0]?.expression).toBe('env.key');
});

test('an unclosed block is an error with its line', () => {
  expect(() => parseShape('a {\n  b {\n')).toThrow(/line \d+: block not closed/);
});

test.each([
  ['"plain"', { kind: 'string', value: 'plain' }],
  ['"a ${var.x}"', { kind: 'template' }],
  ['42', { kind: 'number' }],
  ['false', { kind: 'bool' }],
  ['null', { kind: 'null' }],
  ['{ a = 1 }', { kind: 'object' }],
  ['["a", 1]', { kind: 'list', elements: [{ kind: 'string', value: 'a' }, { kind: 'number' }] }],
  ['[for x in y : x]', { kind: 'list', elements: undefined }],
  ['var.on ? "A" : "B"', { kind: 'choice', values: ['A', 'B'] }],
  ['var.on ? "A" : var.b', { kind: 'expression' }],
  ['a == b ? "A" : c ? "B" : "C"', { kind: 'expression' }],
  ['merge(local.a, { b = 1 })', { kind: 'expression' }],
])('shape of %s', (expression, shape) => {
  expect(shapeOf(expression)).toEqual(shape);
});
