// Parameters of the westeurope deployment:
//   make deploy REGION=westeurope
// Secrets never go here. Values that differ per installation come from the environment of the admin
// running the deployment (see the README (admin section)).
using './main.bicep'

param region = 'westeurope'
param pairedRegion = 'northeurope'

// The data tier lives in northeurope. After a failover drill or a real failover, set dataPrimaryRegion
// to the promoted region in BOTH parameter files before the next deployment.
param dataHomeRegion = 'northeurope'
param dataPrimaryRegion = 'northeurope'

param appName = 'connecthub'
param entraAppId = readEnvironmentVariable('CONNECTHUB_APP_ID')
param operatorTenantId = readEnvironmentVariable('CONNECTHUB_OPERATOR_TENANT_ID')
param appVersion = readEnvironmentVariable('CONNECTHUB_VERSION', 'unversioned')

param serviceBusDrMode = 'geoReplication'
param serviceBusCapacity = 1
param handlerDeadlineSeconds = 60
param alwaysReadyHttpInstances = 1

var adminIpRanges = readEnvironmentVariable('CONNECTHUB_ADMIN_IP_RANGES', '')
param keyVaultAllowedIpRanges = empty(adminIpRanges) ? [] : split(adminIpRanges, ',')

param customDomain = readEnvironmentVariable('CONNECTHUB_CUSTOM_DOMAIN', '')
param customDomainCertificateSecretName = readEnvironmentVariable('CONNECTHUB_CUSTOM_DOMAIN_CERT_SECRET', '')

param allowedLocations = [
  'northeurope'
  'westeurope'
]
