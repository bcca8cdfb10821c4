// The page: wires the views together. No framework, no third-party code.
import {Audit} from './audit.js';
import {Chat} from './chat.js';
import {Status} from './status.js';
import {Triage} from './triage.js';
import {Vm} from './vm.js';

const VIEWS = ['chat', 'vm', 'triage', 'audit'];

class App {
	constructor() {
		this.status = new Status(this);
		this.chat = new Chat(this);
		this.vm = new Vm(this);
		this.triage = new Triage(this);
		this.audit = new Audit(this);
		for (const v of VIEWS)
			document.getElementById(`tab-${v}`).addEventListener('click', () => this.show(v));
		this.fitViewport();
	}

	show(view) {
		for (const v of VIEWS) {
			document.getElementById(`view-${v}`).hidden = v !== view;
			const t = document.getElementById(`tab-${v}`);
			if (v === view)
				t.setAttribute('aria-current', 'page');
			else
				t.removeAttribute('aria-current');
		}
		document.body.dataset.view = view;
		if (view === 'audit')
			this.audit.load();
	}

	// The on-screen keyboard: size the app to the visual viewport, so the
	// composer stays above the keyboard on browsers that overlay it.
	fitViewport() {
		const vv = window.visualViewport;
		if (!vv)
			return;
		const fit = () => document.documentElement.style.setProperty('--app-h', `${Math.round(vv.height)}px`);
		vv.addEventListener('resize', fit);
		fit();
	}

	async start() {
		this.show('chat');
		this.status.start();
		this.vm.start();
		await this.chat.start();
	}
}

const app = new App();
window.breakglass = app; // for the browser tests and a curious operator's console
app.start();
