// Renders apps/web/ui/icon.svg to the PNG icons of the manifest (192 and
// 512 px) with the Debian chromium, once; the PNGs are committed. Run:
//   node tests/e2e/page/make-icons.mjs   (after scripts/bootstrap)
import {readFileSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {createRequire} from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const require = createRequire(join(root, '.tools', 'node', 'node_modules', 'x.js'));
const {chromium} = require('playwright-core');
const svg = readFileSync(join(root, 'apps', 'web', 'ui', 'icon.svg'), 'utf8');
const browser = await chromium.launch({executablePath: '/usr/lib/chromium/chromium', headless: true, args: ['--no-sandbox']});
for (const size of [192, 512]) {
	const page = await browser.newPage({viewport: {width: size, height: size}});
	await page.setContent(`<html><body style="margin:0">${svg.replace('<svg ', `<svg width="${size}" height="${size}" `)}</body></html>`);
	await page.screenshot({path: join(root, 'apps', 'web', 'ui', `icon-${size}.png`), omitBackground: true});
	await page.close();
}
await browser.close();
