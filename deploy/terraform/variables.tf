variable "namespace" {
  description = "Namespace of breakglass-web and its auth proxy."
  type        = string
  default     = "breakglass"
}

variable "image" {
  description = "breakglass image with a pinned tag (deploy/docker/Dockerfile)."
  type        = string
  validation {
    condition     = can(regex(":[A-Za-z0-9._-]+$", var.image)) && !endswith(var.image, ":latest")
    error_message = "Pin the image to a tag other than latest."
  }
}

variable "devvm_host" {
  description = "The devvm's IP address (no DNS dependency in an incident)."
  type        = string
  validation {
    condition     = can(cidrhost("${var.devvm_host}/32", 0))
    error_message = "devvm_host must be an IPv4 address."
  }
}

variable "pve_host" {
  description = "The Proxmox host's IP address, where breakglass-pve is the forced command."
  type        = string
  validation {
    condition     = can(cidrhost("${var.pve_host}/32", 0))
    error_message = "pve_host must be an IPv4 address."
  }
}

variable "pve_vmid" {
  description = "The VM the Proxmox key acts on (shown in the UI; the host's pve.conf decides)."
  type        = string
  default     = ""
}

variable "avoid_node" {
  description = "The node the pod should preferably not run on (the one the wedged VM contends with)."
  type        = string
}

variable "priority_class_name" {
  description = "A tier-0 PriorityClass: the recovery page must be scheduled before the workloads it rescues."
  type        = string
  default     = "tier-0-core"
}

variable "ingress_host" {
  description = "Host name of the page, behind the authenticating proxy."
  type        = string
}

variable "ingress_class_name" {
  type    = string
  default = "nginx"
}

variable "auth_url" {
  description = "The forward-auth endpoint of the authenticating proxy (authentik's outpost)."
  type        = string
}

variable "auth_signin" {
  description = "Where the proxy sends an unauthenticated browser."
  type        = string
  default     = "/outpost.goauthentik.io/start?rd=$scheme://$http_host$escaped_request_uri"
}

variable "proxy_header" {
  description = "The header the proxy sets to the user's name ([web] proxy_header)."
  type        = string
  default     = "X-authentik-username"
}

variable "trusted_proxies" {
  description = "CIDRs of the ingress controller's pods ([web] trusted_proxies)."
  type        = list(string)
}

variable "sessions_storage" {
  description = "emptyDir (no storage dependency) or pvc (sessions outlive the pod)."
  type        = string
  default     = "emptyDir"
  validation {
    condition     = contains(["emptyDir", "pvc"], var.sessions_storage)
    error_message = "sessions_storage is emptyDir or pvc."
  }
}

variable "llm_provider" {
  type    = string
  default = "anthropic"
}

variable "vault_secret_path" {
  description = "KV v2 path of the SSH key and the tokens (ssh_private_key, api_bearer_token, anthropic_api_key)."
  type        = string
  default     = "secret/breakglass"
}

variable "secret_store_name" {
  description = "The External Secrets ClusterSecretStore that reads Vault."
  type        = string
  default     = "vault"
}

variable "vault_kubernetes_backend" {
  type    = string
  default = "kubernetes"
}

variable "denied_roles" {
  description = <<-EOT
    Every other workload's Vault Kubernetes-auth role (the shared agent pod's
    among them). The module manages them so that each carries the
    breakglass-deny policy: a deny wins over any grant.
  EOT
  type = map(object({
    service_accounts = list(string)
    namespaces       = list(string)
    policies         = list(string)
  }))
  default = {}
}

variable "emergency_htpasswd" {
  description = "htpasswd line(s) of the emergency basic-auth proxy (bcrypt). Rolling it rolls the proxy."
  type        = string
  sensitive   = true
}

variable "auth_proxy_image" {
  type    = string
  default = "nginx:1.27-alpine"
}
