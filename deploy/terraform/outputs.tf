output "namespace" {
  value = kubernetes_namespace_v1.breakglass.metadata[0].name
}

output "deny_policy" {
  description = "Attach to any Vault role this module does not manage."
  value       = vault_policy.breakglass_deny.name
}
