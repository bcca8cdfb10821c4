# Vault: External Secrets may read the break-glass path; every other role
# carries a policy that denies it (a deny wins over any grant), so the
# shared agent pod cannot read the key even if another policy would let it.

locals {
  # KV v2: the data and metadata paths of var.vault_secret_path
  kv_mount = split("/", var.vault_secret_path)[0]
  kv_rest  = join("/", slice(split("/", var.vault_secret_path), 1, length(split("/", var.vault_secret_path))))
  kv_paths = ["${local.kv_mount}/data/${local.kv_rest}", "${local.kv_mount}/metadata/${local.kv_rest}"]
}

resource "vault_policy" "breakglass_read" {
  name   = "breakglass-read"
  policy = <<-EOT
    # External Secrets' store: the break-glass secret, read only.
    path "${local.kv_paths[0]}" {
      capabilities = ["read"]
    }
  EOT
}

resource "vault_policy" "breakglass_deny" {
  name   = "breakglass-deny"
  policy = <<-EOT
    # Attached to every other role: the break-glass key is not theirs.
    path "${local.kv_paths[0]}" {
      capabilities = ["deny"]
    }
    path "${local.kv_paths[1]}" {
      capabilities = ["deny"]
    }
  EOT
}

resource "vault_kubernetes_auth_backend_role" "denied" {
  for_each                         = var.denied_roles
  backend                          = var.vault_kubernetes_backend
  role_name                        = each.key
  bound_service_account_names      = each.value.service_accounts
  bound_service_account_namespaces = each.value.namespaces
  token_policies                   = distinct(concat(each.value.policies, [vault_policy.breakglass_deny.name]))
}
