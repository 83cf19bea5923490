import { InvalidOptionsError } from '../../../lib/common/errors.js';
import {
  booleanOption,
  describeValue,
  integerOption,
  oneOfOption,
  optionsObject,
  positiveNumberOption,
  refuseUnknownKeys,
  stringOption,
} from '../../../lib/common/options.validation.js';

describe('options validation', () => {
  it('names the option, the rule and the value with its type', () => {
    expect(() => integerOption('EventBus', 'concurrency', '4', 1, 1)).toThrow(
      new InvalidOptionsError(`EventBus: concurrency must be an integer >= 1 (got "4", a string)`),
    );
    expect(() => integerOption('X', 'n', 1.5, 1, 1, 10)).toThrow(
      'X: n must be an integer from 1 to 10 (got 1.5, a number)',
    );
    expect(() => positiveNumberOption('X', 'ttlMs', 0, 1)).toThrow(
      'X: ttlMs must be a finite number > 0 (got 0, a number)',
    );
    expect(() => positiveNumberOption('X', 'ttlMs', Infinity, 1)).toThrow(InvalidOptionsError);
    expect(() => stringOption('X', 's', '', 'a')).toThrow(
      'X: s must be a non-empty string (got "", a string)',
    );
    expect(() => booleanOption('X', 'b', 'true', false)).toThrow('(got "true", a string)');
    expect(() => oneOfOption('X', 'mode', 'x', ['a', 'b'] as const, 'a')).toThrow(
      "must be one of 'a', 'b'",
    );
  });

  it('resolves undefined to the fallback and passes valid values through', () => {
    expect(integerOption('X', 'n', undefined, 7)).toBe(7);
    expect(integerOption('X', 'n', 3, 7, 1)).toBe(3);
    expect(positiveNumberOption('X', 'n', undefined, undefined)).toBeUndefined();
    expect(positiveNumberOption('X', 'n', 0.5, 1)).toBe(0.5);
    expect(stringOption('X', 's', undefined, 'd')).toBe('d');
    expect(booleanOption('X', 'b', true, false)).toBe(true);
  });

  it('describes values of every type', () => {
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(null)).toBe('null');
    expect(describeValue(10n)).toBe('10n, a bigint');
    expect(describeValue([1, 2])).toBe('an array of 2');
    expect(describeValue(new Map())).toBe('an instance of Map');
    expect(describeValue(() => 1)).toBe('a function');
    expect(describeValue('x'.repeat(100))).toContain('...');
  });

  it('refuses unknown keys, pointing event-emitter habits at the migration notes', () => {
    expect(() =>
      refuseUnknownKeys('EventsModule', { concurrency: 1, colour: 'red' }, ['concurrency']),
    ).toThrow("EventsModule: unknown option 'colour' (known: concurrency)");
    expect(() =>
      refuseUnknownKeys('EventsModule', { wildcard: true, delimiter: '.' }, ['concurrency']),
    ).toThrow(/unknown options 'wildcard', 'delimiter'.*Coming from @nestjs\/event-emitter/);
    expect(() => refuseUnknownKeys('X', { a: 1, b: undefined }, ['a'])).not.toThrow();
  });

  it('checks the options object itself', () => {
    expect(optionsObject<{ a?: number }>('X', undefined, ['a'])).toEqual({});
    expect(() => optionsObject('X', 'nope' as unknown as object, [])).toThrow(
      'X: options must be an object (got "nope", a string)',
    );
  });
});
