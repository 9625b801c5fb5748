import { cronToWords, presetToCron, validateCron } from '../cron';

describe('cronToWords', () => {
  it.each([
    ['0 * * * *', 'every hour at :00'],
    ['15 * * * *', 'every hour at :15'],
    ['@hourly', 'every hour at :00'],
    ['* * * * *', 'every minute'],
    ['*/5 * * * *', 'every 5 minutes'],
    ['0 */2 * * *', 'every 2 hours'],
    ['30 */6 * * *', 'every 6 hours at :30'],
    ['0 6 * * *', 'every day at 06:00'],
    ['@daily', 'every day at 00:00'],
    ['30 7 * * 1-5', 'weekdays at 07:30'],
    ['30 7 * * MON-FRI', 'weekdays at 07:30'],
    ['0 9 * * 6,0', 'weekends at 09:00'],
    ['0 18 * * 5', 'every Friday at 18:00'],
    ['0 18 * * 7', 'every Sunday at 18:00'],
    ['0 18 * * mon', 'every Monday at 18:00'],
    ['0 8 * * 1,3,5', 'every Monday, Wednesday and Friday at 08:00'],
    ['0 0 1 * *', 'every month on the 1st at 00:00'],
    ['0 12 22 * *', 'every month on the 22nd at 12:00'],
    ['0 12 13 * *', 'every month on the 13th at 12:00'],
    ['@yearly', 'every year on 1 January at 00:00'],
    ['  0   6 *  * * ', 'every day at 06:00']
  ])('%s is "%s"', (expr, words) => {
    expect(cronToWords(expr)).toBe(words);
  });

  it('ends with the time zone', () => {
    expect(cronToWords('0 6 * * *', 'Europe/Berlin')).toBe('every day at 06:00 Europe/Berlin');
  });

  it.each(['0 6 * 3 *', '0 6-9 * * *', '5,10 * * * *', '0 6 1 * 1', 'not cron', '99 * * * *'])(
    'falls back to the raw expression for %s',
    expr => {
      expect(cronToWords(expr)).toBe(`cron "${expr}"`);
    }
  );
});

describe('validateCron', () => {
  it.each(['0 6 * * *', '*/15 * * * *', '0 9-17 * * 1-5', '0 0 1 JAN *', '@weekly', '0 0 * * 7'])(
    'accepts %s',
    expr => {
      expect(validateCron(expr)).toBeNull();
    }
  );

  it.each([
    ['', /enter a cron expression/],
    ['0 6 * *', /5 fields/],
    ['60 * * * *', /minute "60" is out of range 0-59/],
    ['0 24 * * *', /hour "24" is out of range/],
    ['0 0 0 * *', /day of month "0"/],
    ['*/0 * * * *', /not a valid minute/],
    ['@sometimes', /unknown alias/],
    ['0 0 * * FUNDAY', /day of week "FUNDAY"/]
  ])('rejects "%s"', (expr, message) => {
    expect(validateCron(expr)).toMatch(message);
  });
});

describe('presetToCron', () => {
  it('builds the expression of each preset', () => {
    expect(presetToCron({ kind: 'hourly', minute: 5 })).toBe('5 * * * *');
    expect(presetToCron({ kind: 'daily', time: '06:00' })).toBe('0 6 * * *');
    expect(presetToCron({ kind: 'weekdays', time: '7:30' })).toBe('30 7 * * 1-5');
    expect(presetToCron({ kind: 'weekly', day: 1, time: '09:15' })).toBe('15 9 * * 1');
    expect(presetToCron({ kind: 'custom', cron: ' */10  * * * * ' })).toBe('*/10 * * * *');
  });

  it('round-trips through the words', () => {
    expect(cronToWords(presetToCron({ kind: 'weekly', day: 3, time: '18:45' }))).toBe('every Wednesday at 18:45');
  });

  it('explains a bad time, minute or cron', () => {
    expect(() => presetToCron({ kind: 'daily', time: '25:00' })).toThrow(/not a time: use HH:MM/);
    expect(() => presetToCron({ kind: 'hourly', minute: 60 })).toThrow(/0 to 59/);
    expect(() => presetToCron({ kind: 'custom', cron: '1 2 3' })).toThrow(/5 fields/);
  });
});
