import assert from 'node:assert/strict';
import { it } from 'node:test';
import { pickText } from '@heraldpush/client';

it('pickText takes the locale, then its language alone, then the default locale', () => {
  const text = { en: 'hello', 'zh-CN': '你好', zh: '您好', fr: 'bonjour' };
  assert.equal(pickText(text, 'zh-CN', 'en'), '你好');
  assert.equal(pickText(text, 'zh-cn', 'en'), '你好', 'language tags compare case-insensitively');
  assert.equal(pickText(text, 'zh-TW', 'en'), '您好', 'the language alone');
  assert.equal(pickText(text, 'de-DE', 'en'), 'hello', 'the default locale');
  assert.equal(pickText(text, undefined, 'fr'), 'bonjour');
  assert.equal(pickText({ ja: 'こんにちは' }, 'de', 'en'), 'こんにちは', 'something rather than nothing');
  assert.equal(pickText({}, 'en', 'en'), '');
  assert.equal(pickText(undefined, 'en', 'en'), '');
});
