from integrations.http import ProviderClient
from integrations.models import IntegrationLog


def test_client_reaches_the_sandbox_over_real_http_and_logs_the_call(make_provider, live_server):
    provider = make_provider(base_url=f"{live_server.url}/sandbox/generic/echo/")
    response = ProviderClient(provider).request("GET", "health", params={"key": "sk_live_ABCDEF123456"})
    assert response.json() == {"status": "ok", "provider": "echo"}
    log = IntegrationLog.objects.get(integration=provider)
    assert log.response_status == 200
    assert "sk_live_ABCDEF123456" not in log.endpoint
    provider.refresh_from_db()
    assert provider.total_requests == 1 and provider.successful_requests == 1
