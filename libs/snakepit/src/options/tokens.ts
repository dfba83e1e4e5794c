/** Injection token of the validated options with every default applied. */
export const SNAKEPIT_RESOLVED_OPTIONS = Symbol('SNAKEPIT_RESOLVED_OPTIONS');
