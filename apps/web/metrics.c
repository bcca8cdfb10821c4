/* Prometheus text format (version 0.0.4) for GET /metrics. */
#include "web.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const verb_results[5] = {"ok", "failed", "rejected", "busy", "error"};
static const char *const llm_kinds[4] = {"unreachable", "timeout", "cancelled", "other"};

void web_metrics_request(web_metrics *m, int route, int status)
{
	if (status < 0 || status >= 600)
		status = 0;
	atomic_fetch_add(&m->requests[route < 0 ? WEB_ROUTE_COUNT : route][status], 1);
}

int web_metrics_verb_index(const char *verb)
{
	size_t n, i;
	const bg_pve_verb *v = bg_pve_verbs(&n);

	for (i = 0; i < n && i < 16; i++)
		if (strcmp(v[i].name, verb) == 0)
			return (int)i;
	return -1;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	long pages = 0, rss = 0;

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

void web_metrics_render(web_server *srv, wbuf *b)
{
	web_metrics *m = srv->metrics;
	const bg_pve_verb *v;
	size_t nv, i;
	int r, s, k;

	wbuf_puts(b, "# HELP breakglass_http_requests_total HTTP requests by route and status.\n"
		     "# TYPE breakglass_http_requests_total counter\n");
	for (r = 0; r <= WEB_ROUTE_COUNT; r++)
		for (s = 0; s < 600; s++) {
			unsigned long c = atomic_load(&m->requests[r][s]);
			if (c)
				wbuf_printf(b, "breakglass_http_requests_total{route=\"%s\",status=\"%d\"} %lu\n",
					    r < WEB_ROUTE_COUNT ? web_routes[r].pattern : "unmatched", s, c);
		}
	wbuf_puts(b, "# HELP breakglass_pve_verbs_total Proxmox verbs by verb and result.\n"
		     "# TYPE breakglass_pve_verbs_total counter\n");
	v = bg_pve_verbs(&nv);
	for (i = 0; i < nv && i < 16; i++)
		for (k = 0; k < 5; k++)
			wbuf_printf(b, "breakglass_pve_verbs_total{verb=\"%s\",result=\"%s\"} %lu\n", v[i].name,
				    verb_results[k], atomic_load(&m->verbs[i][k]));
	wbuf_printf(
		b,
		"# HELP breakglass_agent_turns_total Agent turns run.\n# TYPE breakglass_agent_turns_total counter\n"
		"breakglass_agent_turns_total %lu\n"
		"# HELP breakglass_agent_tool_calls_total Tool calls made by the agent.\n"
		"# TYPE breakglass_agent_tool_calls_total counter\nbreakglass_agent_tool_calls_total %lu\n"
		"# HELP breakglass_agent_approvals_total Decisions on mutating verbs.\n"
		"# TYPE breakglass_agent_approvals_total counter\nbreakglass_agent_approvals_total %lu\n"
		"# HELP breakglass_agent_turns_running Turns running now.\n"
		"# TYPE breakglass_agent_turns_running gauge\nbreakglass_agent_turns_running %d\n",
		atomic_load(&m->turns), atomic_load(&m->tool_calls), atomic_load(&m->approvals),
		web_agents_running(srv->agents));
	wbuf_puts(b, "# HELP breakglass_llm_errors_total Errors that ended or interrupted a turn, by kind.\n"
		     "# TYPE breakglass_llm_errors_total counter\n");
	for (k = 0; k < 4; k++)
		wbuf_printf(b, "breakglass_llm_errors_total{kind=\"%s\"} %lu\n", llm_kinds[k],
			    atomic_load(&m->llm_errors[k]));
	wbuf_printf(b,
		    "# HELP breakglass_auth_failures_total Refused credentials.\n"
		    "# TYPE breakglass_auth_failures_total counter\nbreakglass_auth_failures_total %lu\n"
		    "# HELP breakglass_sse_clients Attached SSE clients.\n# TYPE breakglass_sse_clients gauge\n"
		    "breakglass_sse_clients %d\n"
		    "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
		    "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n",
		    atomic_load(&m->auth_failures), web_stream_count(srv->stream), rss_kib() * 1024);
}
