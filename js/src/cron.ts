/**
 * Cron expressions in words, and the schedule presets of the "Schedule this notebook…" dialog.
 *
 * Pure functions (no JupyterLab imports) so that Jest tests them directly.
 */

const DAY_NAMES = [
  'Sunday',
  'Monday',
  'Tuesday',
  'Wednesday',
  'Thursday',
  'Friday',
  'Saturday'
];
const DAY_ABBREVIATIONS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const MONTH_ABBREVIATIONS = [
  'JAN',
  'FEB',
  'MAR',
  'APR',
  'MAY',
  'JUN',
  'JUL',
  'AUG',
  'SEP',
  'OCT',
  'NOV',
  'DEC'
];

const ALIASES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *'
};

/** The five fields of a cron expression, and the range each accepts. */
const FIELDS: { name: string; min: number; max: number; names?: string[] }[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTH_ABBREVIATIONS },
  { name: 'day of week', min: 0, max: 7, names: DAY_ABBREVIATIONS }
];

const pad = (n: number): string => String(n).padStart(2, '0');

function isInt(s: string): boolean {
  return /^\d+$/.test(s);
}

/** "HH:MM" for an hour and a minute. */
export function formatTime(hour: number, minute: number): string {
  return `${pad(hour)}:${pad(minute)}`;
}

function ordinal(n: number): string {
  const rem100 = n % 100;
  if (rem100 >= 11 && rem100 <= 13) {
    return `${n}th`;
  }
  return `${n}${{ 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] ?? 'th'}`;
}

function listInWords(items: string[]): string {
  if (items.length <= 1) {
    return items.join('');
  }
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** Day-of-week field value (0-7 or SUN-SAT) to a day index 0-6, or null. */
function dayIndex(value: string): number | null {
  const upper = value.toUpperCase();
  const named = DAY_ABBREVIATIONS.indexOf(upper);
  if (named >= 0) {
    return named;
  }
  if (isInt(value) && Number(value) <= 7) {
    return Number(value) % 7;
  }
  return null;
}

/** Return the expression with aliases (`@daily`, …) expanded and whitespace normalised. */
export function normalizeCron(expr: string): string {
  const trimmed = expr.trim().replace(/\s+/g, ' ');
  return ALIASES[trimmed.toLowerCase()] ?? trimmed;
}

function validateField(value: string, field: (typeof FIELDS)[number]): string | null {
  for (const part of value.split(',')) {
    const [range, step, ...extra] = part.split('/');
    if (extra.length || range === '' || (step !== undefined && (!isInt(step) || Number(step) === 0))) {
      return `"${part}" is not a valid ${field.name}`;
    }
    if (range === '*') {
      continue;
    }
    const bounds = range.split('-');
    if (bounds.length > 2) {
      return `"${part}" is not a valid ${field.name}`;
    }
    for (const bound of bounds) {
      const named = field.names?.indexOf(bound.toUpperCase()) ?? -1;
      const n = named >= 0 ? named + (field.name === 'month' ? 1 : 0) : isInt(bound) ? Number(bound) : NaN;
      if (Number.isNaN(n) || n < field.min || n > field.max) {
        return `${field.name} "${bound}" is out of range ${field.min}-${field.max}`;
      }
    }
  }
  return null;
}

/**
 * Check a cron expression (five fields or an `@alias`).
 *
 * Returns a message saying what is wrong, or `null` when the expression is valid.
 */
export function validateCron(expr: string): string | null {
  const normalized = normalizeCron(expr);
  if (!normalized) {
    return 'enter a cron expression, e.g. "0 6 * * *"';
  }
  if (normalized.startsWith('@')) {
    return `unknown alias "${normalized}" (use @hourly, @daily, @weekly, @monthly or @yearly)`;
  }
  const parts = normalized.split(' ');
  if (parts.length !== 5) {
    return `a cron expression has 5 fields (minute hour day month weekday), not ${parts.length}`;
  }
  for (let i = 0; i < 5; i++) {
    const error = validateField(parts[i], FIELDS[i]);
    if (error) {
      return error;
    }
  }
  return null;
}

function daysInWords(dow: string): string | null {
  if (dow === '1-5' || dow.toUpperCase() === 'MON-FRI') {
    return 'weekdays';
  }
  if (['0,6', '6,0', '6,7', 'SAT,SUN', 'SUN,SAT'].includes(dow.toUpperCase())) {
    return 'weekends';
  }
  const days: number[] = [];
  for (const part of dow.split(',')) {
    const day = dayIndex(part);
    if (day === null) {
      return null;
    }
    days.push(day);
  }
  return `every ${listInWords(days.map(d => DAY_NAMES[d]))}`;
}

/** The words for a five-field expression, or null when it is not one of the shapes we describe. */
function describe(expr: string): string | null {
  const [minute, hour, dom, month, dow] = expr.split(' ');
  if (month !== '*') {
    if (minute === '0' && hour === '0' && dom === '1' && month === '1' && dow === '*') {
      return 'every year on 1 January at 00:00';
    }
    return null;
  }
  // every minute / every N minutes
  if (hour === '*' && dom === '*' && dow === '*') {
    if (minute === '*') {
      return 'every minute';
    }
    const everyN = /^(?:\*|0)\/(\d+)$/.exec(minute);
    if (everyN) {
      const n = Number(everyN[1]);
      return n === 1 ? 'every minute' : `every ${n} minutes`;
    }
    if (isInt(minute)) {
      return `every hour at :${pad(Number(minute))}`;
    }
    return null;
  }
  if (!isInt(minute)) {
    return null;
  }
  // every N hours
  const everyNHours = /^(?:\*|0)\/(\d+)$/.exec(hour);
  if (everyNHours && dom === '*' && dow === '*') {
    const n = Number(everyNHours[1]);
    const at = Number(minute) === 0 ? '' : ` at :${pad(Number(minute))}`;
    return n === 1 ? `every hour${at}` : `every ${n} hours${at}`;
  }
  if (!isInt(hour)) {
    return null;
  }
  const time = formatTime(Number(hour), Number(minute));
  if (dom === '*' && dow === '*') {
    return `every day at ${time}`;
  }
  if (dom === '*') {
    const days = daysInWords(dow);
    return days ? `${days} at ${time}` : null;
  }
  if (dow === '*' && isInt(dom)) {
    return `every month on the ${ordinal(Number(dom))} at ${time}`;
  }
  return null;
}

/**
 * Describe a cron expression in words, e.g. `"0 6 * * *"` → `"every day at 06:00"`.
 *
 * With a time zone the words end with it (`"every day at 06:00 Europe/Berlin"`). Shapes this function
 * does not know come back as `cron "<expression>"`, so the user always sees something true.
 */
export function cronToWords(expr: string, timezone?: string | null): string {
  const normalized = normalizeCron(expr);
  const words = validateCron(normalized) === null ? describe(normalized) : null;
  const text = words ?? `cron "${expr.trim()}"`;
  return timezone ? `${text} ${timezone}` : text;
}

/** The schedule presets the dialog offers. */
export type SchedulePreset =
  | { kind: 'hourly'; minute: number }
  | { kind: 'daily'; time: string }
  | { kind: 'weekdays'; time: string }
  | { kind: 'weekly'; day: number; time: string }
  | { kind: 'custom'; cron: string };

/** Parse "HH:MM" (24 h); returns null when it is not a time. */
export function parseTime(time: string): { hour: number; minute: number } | null {
  const m = /^(\d{1,2}):(\d{2})$/.exec(time.trim());
  if (!m) {
    return null;
  }
  const hour = Number(m[1]);
  const minute = Number(m[2]);
  if (hour > 23 || minute > 59) {
    return null;
  }
  return { hour, minute };
}

/**
 * The cron expression for a preset.
 *
 * Throws an `Error` whose message is meant for the user when the preset's time or cron is invalid.
 */
export function presetToCron(preset: SchedulePreset): string {
  if (preset.kind === 'custom') {
    const error = validateCron(preset.cron);
    if (error) {
      throw new Error(error);
    }
    return normalizeCron(preset.cron);
  }
  if (preset.kind === 'hourly') {
    if (!Number.isInteger(preset.minute) || preset.minute < 0 || preset.minute > 59) {
      throw new Error('the minute must be a whole number from 0 to 59');
    }
    return `${preset.minute} * * * *`;
  }
  const time = parseTime(preset.time);
  if (!time) {
    throw new Error(`"${preset.time}" is not a time: use HH:MM, e.g. 06:00`);
  }
  const { hour, minute } = time;
  switch (preset.kind) {
    case 'daily':
      return `${minute} ${hour} * * *`;
    case 'weekdays':
      return `${minute} ${hour} * * 1-5`;
    case 'weekly':
      if (!Number.isInteger(preset.day) || preset.day < 0 || preset.day > 6) {
        throw new Error('pick a day of the week');
      }
      return `${minute} ${hour} * * ${preset.day}`;
  }
}

export { DAY_NAMES };
