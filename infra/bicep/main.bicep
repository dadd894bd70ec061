// ConnectHub in Azure: one deployment per region of the EU pair, at subscription scope.
//
//   az deployment sub create --name connecthub-<region> --location <region> \
//     --template-file infra/bicep/main.bicep --parameters infra/bicep/<region>.bicepparam
//
// Every deployment builds its region's compute (identity, network, monitoring, host storage, Function
// App) and writes the global parts (policy, Traffic Manager) identically. The data tier (geo-replicated
// table storage, Service Bus, Key Vault) is created by the data home region's deployment only, so that
// region is deployed first; the other region only grants its identity access to it. the README (admin section) has
// the order, the outputs and the failover drill.
targetScope = 'subscription'

@description('Region this deployment builds the compute stack in.')
@allowed([
  'northeurope'
  'westeurope'
])
param region string

@description('The other region of the pair: the standby stack and the data replicas live there.')
@allowed([
  'northeurope'
  'westeurope'
])
param pairedRegion string

@description('Region of the data resource group and the Key Vault. Fixed once deployed.')
@allowed([
  'northeurope'
  'westeurope'
])
param dataHomeRegion string = 'northeurope'

@description('Region currently primary for table storage and Service Bus, and so the active region behind Traffic Manager. It equals dataHomeRegion until a failover; after one, set it to the promoted region in both parameter files before redeploying.')
@allowed([
  'northeurope'
  'westeurope'
])
param dataPrimaryRegion string = dataHomeRegion

@description('Short name used in every resource name.')
@minLength(3)
@maxLength(12)
param appName string = 'connecthub'

@description('Entra application (client) id of ConnectHub: the audience of Graph validation tokens.')
@minLength(36)
@maxLength(36)
param entraAppId string

@description('ConnectHub\'s own Entra tenant id: its users and apps with ConnectHub.* app roles are staff (admin API).')
param operatorTenantId string

@description('geoReplication: messages and metadata replicated (preview). geoDr: alias with metadata only (GA). See the README (admin section).')
@allowed([
  'geoReplication'
  'geoDr'
])
param serviceBusDrMode string = 'geoReplication'

@description('Messaging units of the Premium namespace; the replica runs the same number.')
@allowed([
  1
  2
  4
  8
  16
])
param serviceBusCapacity int = 1

@description('Deadline of one queue invocation in the handler, in seconds. The queues lock a message exactly this long (Service Bus allows at most 5 minutes).')
@minValue(10)
@maxValue(300)
param handlerDeadlineSeconds int = 60

@description('Always-ready instances for the HTTP functions (the webhook must answer Graph within 3 s).')
@minValue(0)
@maxValue(10)
param alwaysReadyHttpInstances int = 1

@description('Public IPv4 addresses or CIDR ranges of admin workstations admitted by the Key Vault firewall.')
param keyVaultAllowedIpRanges array = []

@description('Custom domain (CNAME to the Traffic Manager FQDN) for the public endpoint; empty for none.')
param customDomain string = ''

@description('Key Vault secret name of the PFX certificate for customDomain.')
param customDomainCertificateSecretName string = ''

@description('Release label the Health function reports.')
param appVersion string = 'unversioned'

@description('Routes of the HTTP functions as the Functions host exposes them.')
param healthPath string = '/api/health'
param webhookPath string = '/api/graph/notifications'
param lifecyclePath string = '/api/graph/lifecycle'

@description('Key Vault secret names of the Graph notification encryption certificates, current first.')
param notificationCertNames array = [
  'notification-cert'
]

@description('EU regions Azure Policy allows for every resource and resource group in the subscription.')
@allowed([
  'northeurope'
  'westeurope'
  'francecentral'
  'germanywestcentral'
  'swedencentral'
  'italynorth'
  'polandcentral'
  'spaincentral'
])
param allowedLocations array = [
  'northeurope'
  'westeurope'
]

param tags object = {
  application: 'connecthub'
  dataBoundary: 'eu'
}

// The queues the functions bind to (functions/*/function.json). ProcessNotification binds with
// isSessionsEnabled, so its queue must require sessions.
var queues = [
  {
    name: 'notifications'
    requiresSession: true
  }
  {
    name: 'lifecycle'
    requiresSession: false
  }
]
var queueNames = [for queue in queues: queue.name]

// Names are derived, never typed, so both regional deployments agree on every shared name.
var suffix = uniqueString(subscription().id, appName)
var regionCodes = {
  northeurope: 'ne'
  westeurope: 'we'
}
var addressPrefixes = {
  northeurope: '10.40.0.0/24'
  westeurope: '10.41.0.0/24'
}
var subnetName = 'snet-functions'
var isDataHome = region == dataHomeRegion
var dataSecondaryRegion = dataPrimaryRegion == region ? pairedRegion : region
var dataHomePairedRegion = dataHomeRegion == region ? pairedRegion : region

var resourceGroupNames = {
  northeurope: 'rg-${appName}-northeurope'
  westeurope: 'rg-${appName}-westeurope'
  data: 'rg-${appName}-data'
  global: 'rg-${appName}-global'
}
var functionAppNames = {
  northeurope: 'func-${appName}-ne-${suffix}'
  westeurope: 'func-${appName}-we-${suffix}'
}
var vnetNames = {
  northeurope: 'vnet-${appName}-ne'
  westeurope: 'vnet-${appName}-we'
}
var workspaceNames = {
  northeurope: 'log-${appName}-ne'
  westeurope: 'log-${appName}-we'
}
var names = {
  identity: 'id-${appName}-${regionCodes[region]}'
  plan: 'plan-${appName}-${regionCodes[region]}'
  appInsights: 'appi-${appName}-${regionCodes[region]}'
  hostStorage: 'stchhost${regionCodes[region]}${take(suffix, 12)}'
  deploymentContainer: 'app-package'
  tablesStorage: 'stchdata${suffix}'
  serviceBus: 'sb-${appName}-${suffix}'
  keyVault: 'kvch${suffix}'
  trafficManager: 'tm-${appName}-${suffix}'
}

// The vault admits the Function App subnets of both regions. The paired region's subnet may not exist
// yet when the data home region is deployed first, so its service-endpoint check is skipped.
var keyVaultSubnetRules = [
  {
    id: resourceId(subscription().subscriptionId, resourceGroupNames[dataHomeRegion], 'Microsoft.Network/virtualNetworks/subnets', vnetNames[dataHomeRegion], subnetName)
    ignoreMissingVnetServiceEndpoint: false
  }
  {
    id: resourceId(subscription().subscriptionId, resourceGroupNames[dataHomePairedRegion], 'Microsoft.Network/virtualNetworks/subnets', vnetNames[dataHomePairedRegion], subnetName)
    ignoreMissingVnetServiceEndpoint: true
  }
]

resource regionGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupNames[region]
  location: region
  tags: tags
}

resource dataGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = if (isDataHome) {
  name: resourceGroupNames.data
  location: dataHomeRegion
  tags: tags
}

resource globalGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupNames.global
  location: dataHomeRegion
  tags: tags
}

module policy './modules/policy.bicep' = {
  name: 'connecthub-policy'
  params: {
    allowedLocations: allowedLocations
  }
}

module identity './modules/identity.bicep' = {
  name: 'connecthub-identity-${region}'
  scope: regionGroup
  params: {
    location: region
    name: names.identity
    tags: tags
  }
}

module monitoring './modules/monitoring.bicep' = {
  name: 'connecthub-monitoring-${region}'
  scope: regionGroup
  params: {
    location: region
    workspaceName: workspaceNames[region]
    appInsightsName: names.appInsights
    identityPrincipalId: identity.outputs.principalId
    tags: tags
  }
}

module network './modules/network.bicep' = {
  name: 'connecthub-network-${region}'
  scope: regionGroup
  params: {
    location: region
    vnetName: vnetNames[region]
    subnetName: subnetName
    addressPrefix: addressPrefixes[region]
    subnetPrefix: addressPrefixes[region]
    workspaceId: monitoring.outputs.workspaceId
    tags: tags
  }
}

module hostStorage './modules/hoststorage.bicep' = {
  name: 'connecthub-hoststorage-${region}'
  scope: regionGroup
  params: {
    location: region
    name: names.hostStorage
    deploymentContainerName: names.deploymentContainer
    identityPrincipalId: identity.outputs.principalId
    workspaceId: monitoring.outputs.workspaceId
    tags: tags
  }
}

module tablesStorage './modules/datastorage.bicep' = if (isDataHome) {
  name: 'connecthub-tables'
  scope: dataGroup
  params: {
    location: dataPrimaryRegion
    name: names.tablesStorage
    workspaceId: monitoring.outputs.workspaceId
    tags: tags
  }
}

module serviceBus './modules/servicebus.bicep' = if (isDataHome) {
  name: 'connecthub-servicebus'
  scope: dataGroup
  params: {
    homeLocation: dataHomeRegion
    primaryLocation: dataPrimaryRegion
    secondaryLocation: dataSecondaryRegion
    drMode: serviceBusDrMode
    namespaceName: names.serviceBus
    capacity: serviceBusCapacity
    queues: queues
    lockDuration: 'PT${handlerDeadlineSeconds}S'
    workspaceId: monitoring.outputs.workspaceId
    tags: tags
  }
}

module keyVault './modules/keyvault.bicep' = if (isDataHome) {
  name: 'connecthub-keyvault'
  scope: dataGroup
  params: {
    location: dataHomeRegion
    name: names.keyVault
    subnetRules: keyVaultSubnetRules
    allowedIpRanges: keyVaultAllowedIpRanges
    workspaceId: monitoring.outputs.workspaceId
    tags: tags
  }
  dependsOn: [
    network
  ]
}

module dataAccess './modules/dataaccess.bicep' = {
  name: 'connecthub-dataaccess-${region}'
  scope: resourceGroup(resourceGroupNames.data)
  params: {
    principalId: identity.outputs.principalId
    tablesAccountName: names.tablesStorage
    namespaceName: serviceBusDrMode == 'geoReplication' ? names.serviceBus : '${names.serviceBus}-${dataPrimaryRegion}'
    partnerNamespaceName: serviceBusDrMode == 'geoReplication' ? '' : '${names.serviceBus}-${dataSecondaryRegion}'
    queueNames: queueNames
    keyVaultName: names.keyVault
    // Whichever region is active writes per-tenant data keys and refresh tokens.
    keyVaultWrites: true
  }
  dependsOn: [
    tablesStorage
    serviceBus
    keyVault
  ]
}

module functionApp './modules/functionapp.bicep' = {
  name: 'connecthub-functionapp-${region}'
  scope: regionGroup
  params: {
    location: region
    planName: names.plan
    appName: functionAppNames[region]
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    hostStorageName: hostStorage.outputs.name
    deploymentContainerName: names.deploymentContainer
    appInsightsName: monitoring.outputs.appInsightsName
    subnetId: network.outputs.subnetId
    workspaceId: monitoring.outputs.workspaceId
    tags: tags
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
    customDomain: customDomain
    keyVaultId: resourceId(subscription().subscriptionId, resourceGroupNames.data, 'Microsoft.KeyVault/vaults', names.keyVault)
    certificateSecretName: customDomainCertificateSecretName
    settings: {
      serviceBusNamespace: '${names.serviceBus}.servicebus.windows.net'
      entraAppId: entraAppId
      operatorTenantId: operatorTenantId
      version: appVersion
      handlerDeadlineSeconds: handlerDeadlineSeconds
      notificationCertNames: notificationCertNames
      tablesAccountUrl: 'https://${names.tablesStorage}.table.${environment().suffixes.storage}'
      keyVaultUrl: 'https://${names.keyVault}${environment().suffixes.keyvaultDns}/'
    }
  }
  // The identity must hold its data roles before the first instance starts.
  dependsOn: [
    dataAccess
  ]
}

module trafficManager './modules/trafficmanager.bicep' = {
  name: 'connecthub-trafficmanager'
  scope: globalGroup
  params: {
    profileName: names.trafficManager
    activeRegion: dataPrimaryRegion
    standbyRegion: dataSecondaryRegion
    activeHostName: '${functionAppNames[dataPrimaryRegion]}.azurewebsites.net'
    standbyHostName: '${functionAppNames[dataSecondaryRegion]}.azurewebsites.net'
    healthPath: healthPath
    workspaceId: resourceId(subscription().subscriptionId, resourceGroupNames[dataHomeRegion], 'Microsoft.OperationalInsights/workspaces', workspaceNames[dataHomeRegion])
    tags: tags
  }
  dependsOn: [
    monitoring
  ]
}

output resourceGroupName string = regionGroup.name
output functionAppName string = functionApp.outputs.name
output functionAppHostName string = functionApp.outputs.defaultHostName
output managedIdentityClientId string = identity.outputs.clientId
output trafficManagerFqdn string = trafficManager.outputs.fqdn

@description('notificationUrl for Graph subscriptions. With a custom domain it fails over with Traffic Manager; without one it is this region\'s app (the trafficmanager.net name has no certificate that Graph would accept).')
output webhookUrl string = empty(customDomain) ? 'https://${functionApp.outputs.defaultHostName}${webhookPath}' : 'https://${customDomain}${webhookPath}'

@description('lifecycleNotificationUrl for Graph subscriptions.')
output lifecycleUrl string = empty(customDomain) ? 'https://${functionApp.outputs.defaultHostName}${lifecyclePath}' : 'https://${customDomain}${lifecyclePath}'

@description('TXT record value for asuid.<customDomain>, which App Service needs before it binds the domain.')
output customDomainVerificationId string = functionApp.outputs.customDomainVerificationId
output tablesAccountName string = names.tablesStorage
output serviceBusNamespace string = '${names.serviceBus}.servicebus.windows.net'
output keyVaultName string = names.keyVault
output dataResourceGroupName string = resourceGroupNames.data
