import { shapeOf, type Shape } from './literal';
import { describeType, type AttributeSchema, type ValueType } from './schema';

/**
 * What is wrong with an argument's value, judged the way Terraform converts values: a
 * literal that no conversion turns into the argument's type (a list where a string belongs,
 * "abc" where a number belongs), or a literal string the provider documents no such value
 * for. Expressions Terraform evaluates (references, calls) are not judged.
 */
export function valueProblems(expression: string, attribute: AttributeSchema): string[] {
  const shape = shapeOf(expression);
  const mismatch = typeMismatch(shape, attribute.type);
  if (mismatch) return [mismatch];
  const allowed = attribute.values;
  if (!allowed) return [];
  const given = shape.kind === 'string' ? [shape.value] : shape.kind === 'choice' ? shape.values : [];
  return given
    .filter((value) => !allowed.includes(value))
    .map((value) => `${JSON.stringify(value)} is not a value the provider documents: ${JSON.stringify(allowed)}`);
}

function typeMismatch(shape: Shape, type: ValueType): string | undefined {
  if (type.kind === 'any' || shape.kind === 'expression' || shape.kind === 'null') return undefined;
  const wrong = () => `${describeShape(shape)} where ${describeType(type)} belongs`;
  switch (type.kind) {
    case 'string':
      return shape.kind === 'list' || shape.kind === 'object' ? wrong() : undefined;
    case 'number':
      if (shape.kind === 'string') return /^-?\d+(\.\d+)?$/.test(shape.value) ? undefined : wrong();
      return shape.kind === 'number' || shape.kind === 'template' ? undefined : wrong();
    case 'bool':
      if (shape.kind === 'string') return shape.value === 'true' || shape.value === 'false' ? undefined : wrong();
      return shape.kind === 'bool' || shape.kind === 'template' ? undefined : wrong();
    case 'map':
      return shape.kind === 'object' ? undefined : wrong();
    case 'list':
      if (shape.kind !== 'list') return wrong();
      for (const element of shape.elements ?? []) {
        const problem = typeMismatch(element, type.element);
        if (problem) return `in the list: ${problem}`;
      }
      return undefined;
  }
}

function describeShape(shape: Shape): string {
  switch (shape.kind) {
    case 'string':
      return `the string ${JSON.stringify(shape.value)}`;
    case 'choice':
      return 'a string';
    case 'template':
      return 'a string template';
    case 'object':
      return 'an object';
    case 'list':
      return 'a list';
    default:
      return `a ${shape.kind}`;
  }
}
