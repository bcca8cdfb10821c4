# breakglass-web on Kubernetes, the same objects as deploy/kubernetes/base,
# with the site's values as variables; plus the Vault policies and the
# emergency basic-auth proxy (auth_proxy.tf).

locals {
  labels   = { "app.kubernetes.io/name" = "breakglass", "app.kubernetes.io/part-of" = "breakglass" }
  selector = { "app.kubernetes.io/name" = "breakglass", "app.kubernetes.io/component" = "web" }
  config   = <<-EOT
    [devvm]
    host = ${var.devvm_host}
    user = breakglass
    [pve]
    host = ${var.pve_host}
    user = root
    vmid = ${var.pve_vmid}
    [ssh]
    key_file = /run/secrets/breakglass/ssh-key
    [agent]
    provider = ${var.llm_provider}
    pve_mutations = confirm
    fallback = offline
    [web]
    listen = 0.0.0.0:8080
    auth = proxy,bearer
    proxy_header = ${var.proxy_header}
    trusted_proxies = ${join(" ", var.trusted_proxies)}
    sessions_dir = /var/lib/breakglass/sessions
    audit_log = /var/lib/breakglass/audit.jsonl
  EOT
  private_ranges = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8"]
}

resource "kubernetes_namespace_v1" "breakglass" {
  metadata {
    name   = var.namespace
    labels = merge(local.labels, { "pod-security.kubernetes.io/enforce" = "restricted" })
  }
}

# No API access and no Vault role of its own.
resource "kubernetes_service_account_v1" "breakglass" {
  metadata {
    name      = "breakglass"
    namespace = kubernetes_namespace_v1.breakglass.metadata[0].name
    labels    = local.labels
  }
  automount_service_account_token = false
}

# Exactly the SSH key and the two tokens, synced from Vault.
resource "kubernetes_manifest" "external_secret" {
  manifest = {
    apiVersion = "external-secrets.io/v1beta1"
    kind       = "ExternalSecret"
    metadata = {
      name      = "breakglass"
      namespace = kubernetes_namespace_v1.breakglass.metadata[0].name
      labels    = local.labels
    }
    spec = {
      refreshInterval = "1h"
      secretStoreRef  = { kind = "ClusterSecretStore", name = var.secret_store_name }
      target          = { name = "breakglass-secrets", creationPolicy = "Owner" }
      data = [
        { secretKey = "ssh-key", remoteRef = { key = var.vault_secret_path, property = "ssh_private_key" } },
        { secretKey = "api-bearer-token", remoteRef = { key = var.vault_secret_path, property = "api_bearer_token" } },
        { secretKey = "anthropic-api-key", remoteRef = { key = var.vault_secret_path, property = "anthropic_api_key" } },
      ]
    }
  }
}

resource "kubernetes_config_map_v1" "config" {
  metadata {
    name      = "breakglass-config"
    namespace = kubernetes_namespace_v1.breakglass.metadata[0].name
    labels    = local.labels
  }
  data = { "breakglass.conf" = local.config }
}

resource "kubernetes_persistent_volume_claim_v1" "sessions" {
  count = var.sessions_storage == "pvc" ? 1 : 0
  metadata {
    name      = "breakglass-sessions"
    namespace = kubernetes_namespace_v1.breakglass.metadata[0].name
    labels    = local.labels
  }
  spec {
    access_modes = ["ReadWriteOnce"]
    resources {
      requests = { storage = "1Gi" }
    }
  }
  wait_until_bound = false
}

resource "kubernetes_deployment_v1" "breakglass" {
  metadata {
    name      = "breakglass"
    namespace = kubernetes_namespace_v1.breakglass.metadata[0].name
    labels    = local.labels
  }
  spec {
    replicas = 1
    strategy {
      type = "Recreate"
    }
    selector {
      match_labels = local.selector
    }
    template {
      metadata {
        labels = merge(local.labels, local.selector)
        # a changed configuration rolls the pod
        annotations = { "checksum/config" = sha256(local.config) }
      }
      spec {
        service_account_name            = kubernetes_service_account_v1.breakglass.metadata[0].name
        automount_service_account_token = false
        priority_class_name             = var.priority_class_name
        enable_service_links            = false
        security_context {
          run_as_non_root = true
          run_as_user     = 10001
          run_as_group    = 10001
          fs_group        = 10001
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }
        toleration {
          key      = "node.kubernetes.io/memory-pressure"
          operator = "Exists"
          effect   = "NoSchedule"
        }
        toleration {
          key      = "node.kubernetes.io/disk-pressure"
          operator = "Exists"
          effect   = "NoSchedule"
        }
        toleration {
          key                = "node.kubernetes.io/not-ready"
          operator           = "Exists"
          effect             = "NoExecute"
          toleration_seconds = 300
        }
        toleration {
          key                = "node.kubernetes.io/unreachable"
          operator           = "Exists"
          effect             = "NoExecute"
          toleration_seconds = 300
        }
        affinity {
          node_affinity {
            preferred_during_scheduling_ignored_during_execution {
              weight = 100
              preference {
                match_expressions {
                  key      = "kubernetes.io/hostname"
                  operator = "NotIn"
                  values   = [var.avoid_node]
                }
              }
            }
          }
        }
        container {
          name              = "web"
          image             = var.image
          image_pull_policy = "IfNotPresent"
          args              = ["--config", "/etc/breakglass/breakglass.conf"]
          port {
            name           = "http"
            container_port = 8080
          }
          env {
            name = "API_BEARER_TOKEN"
            value_from {
              secret_key_ref {
                name = "breakglass-secrets"
                key  = "api-bearer-token"
              }
            }
          }
          env {
            name = "ANTHROPIC_API_KEY"
            value_from {
              secret_key_ref {
                name     = "breakglass-secrets"
                key      = "anthropic-api-key"
                optional = true
              }
            }
          }
          resources {
            # bench/web's figures, as in deploy/kubernetes/base/deployment.yaml
            requests = { cpu = "100m", memory = "64Mi" }
            limits   = { memory = "128Mi" }
          }
          startup_probe {
            http_get {
              path = "/health"
              port = "http"
            }
            period_seconds    = 2
            failure_threshold = 30
          }
          readiness_probe {
            http_get {
              path = "/health"
              port = "http"
            }
            period_seconds  = 10
            timeout_seconds = 3
          }
          liveness_probe {
            http_get {
              path = "/health"
              port = "http"
            }
            period_seconds    = 20
            timeout_seconds   = 5
            failure_threshold = 3
          }
          security_context {
            read_only_root_filesystem  = true
            allow_privilege_escalation = false
            privileged                 = false
            capabilities {
              drop = ["ALL"]
            }
          }
          volume_mount {
            name       = "config"
            mount_path = "/etc/breakglass"
            read_only  = true
          }
          volume_mount {
            name       = "ssh-key"
            mount_path = "/run/secrets/breakglass"
            read_only  = true
          }
          volume_mount {
            name       = "sessions"
            mount_path = "/var/lib/breakglass"
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
        }
        volume {
          name = "config"
          config_map {
            name = kubernetes_config_map_v1.config.metadata[0].name
          }
        }
        volume {
          name = "ssh-key"
          secret {
            secret_name  = "breakglass-secrets"
            default_mode = "0440"
            items {
              key  = "ssh-key"
              path = "ssh-key"
            }
          }
        }
        volume {
          name = "sessions"
          dynamic "empty_dir" {
            for_each = var.sessions_storage == "emptyDir" ? [1] : []
            content {
              size_limit = "1Gi"
            }
          }
          dynamic "persistent_volume_claim" {
            for_each = var.sessions_storage == "pvc" ? [1] : []
            content {
              claim_name = "breakglass-sessions"
            }
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            medium     = "Memory"
            size_limit = "16Mi"
          }
        }
      }
    }
  }
}

resource "kubernetes_service_v1" "breakglass" {
  metadata {
    name      = "breakglass"
    namespace = kubernetes_namespace_v1.breakglass.metadata[0].name
    labels    = local.labels
  }
  spec {
    type     = "ClusterIP"
    selector = local.selector
    port {
      name        = "http"
      port        = 80
      target_port = "http"
    }
  }
}

# Egress only to the two SSH targets, DNS and HTTPS to public addresses
# (the LLM API); ingress only from the ingress controller.
resource "kubernetes_network_policy_v1" "breakglass" {
  metadata {
    name      = "breakglass"
    namespace = kubernetes_namespace_v1.breakglass.metadata[0].name
    labels    = local.labels
  }
  spec {
    pod_selector {
      match_labels = local.selector
    }
    policy_types = ["Ingress", "Egress"]
    ingress {
      from {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = "ingress-nginx" }
        }
      }
      ports {
        protocol = "TCP"
        port     = "8080"
      }
    }
    egress {
      to {
        ip_block {
          cidr = "${var.devvm_host}/32"
        }
      }
      ports {
        protocol = "TCP"
        port     = "22"
      }
    }
    egress {
      to {
        ip_block {
          cidr = "${var.pve_host}/32"
        }
      }
      ports {
        protocol = "TCP"
        port     = "22"
      }
    }
    egress {
      to {
        namespace_selector {
          match_labels = { "kubernetes.io/metadata.name" = "kube-system" }
        }
        pod_selector {
          match_labels = { "k8s-app" = "kube-dns" }
        }
      }
      ports {
        protocol = "UDP"
        port     = "53"
      }
      ports {
        protocol = "TCP"
        port     = "53"
      }
    }
    egress {
      to {
        ip_block {
          cidr   = "0.0.0.0/0"
          except = local.private_ranges
        }
      }
      ports {
        protocol = "TCP"
        port     = "443"
      }
    }
  }
}

resource "kubernetes_ingress_v1" "breakglass" {
  metadata {
    name      = "breakglass"
    namespace = kubernetes_namespace_v1.breakglass.metadata[0].name
    labels    = local.labels
    annotations = {
      "nginx.ingress.kubernetes.io/auth-url"              = var.auth_url
      "nginx.ingress.kubernetes.io/auth-signin"           = var.auth_signin
      "nginx.ingress.kubernetes.io/auth-response-headers" = var.proxy_header
      "nginx.ingress.kubernetes.io/proxy-read-timeout"    = "3600"
      "nginx.ingress.kubernetes.io/proxy-buffering"       = "off"
      "nginx.ingress.kubernetes.io/ssl-redirect"          = "true"
    }
  }
  spec {
    ingress_class_name = var.ingress_class_name
    tls {
      hosts       = [var.ingress_host]
      secret_name = "breakglass-tls"
    }
    rule {
      host = var.ingress_host
      http {
        path {
          path      = "/"
          path_type = "Prefix"
          backend {
            service {
              name = kubernetes_service_v1.breakglass.metadata[0].name
              port {
                name = "http"
              }
            }
          }
        }
      }
    }
  }
}
