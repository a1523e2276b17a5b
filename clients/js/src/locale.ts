import type { Localized } from './envelope.js';
import { own } from './ids.js';

/**
 * pickText chooses the text to show from localized text (protocol.md section 3):
 * the player's locale, else its language alone ("zh" for "zh-TW"), else the
 * game's default locale. Language tags compare case-insensitively. Should none
 * of them be there, it falls back to the first text rather than show nothing;
 * it returns "" only for missing or empty text.
 */
export function pickText(text: Localized | undefined, locale: string | undefined, defaultLocale: string | undefined): string {
  if (text === undefined) return '';
  const wanted = [locale, locale?.split('-')[0], defaultLocale];
  const keys = Object.keys(text);
  for (const w of wanted) {
    if (w === undefined || w === '') continue;
    const key = keys.find((k) => k.toLowerCase() === w.toLowerCase());
    const t = key === undefined ? undefined : own(text, key);
    if (typeof t === 'string') return t;
  }
  const first = keys.length > 0 ? own(text, keys[0] as string) : undefined;
  return typeof first === 'string' ? first : '';
}
